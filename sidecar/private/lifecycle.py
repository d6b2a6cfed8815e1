"""Pure decision rules of the private VLAN group lifecycle (docs/protocol.md).

Every member applies the same rules to what it has heard on the management
VLAN, so members agree without a coordinator:

- PrivateSettings: the timing of one VLAN (its configuration) and what follows;
- committer: the member with the lowest leaf index among live members;
- plan_commit: what the committer commits now (adds, removals, updates, rekey);
- winner / should_move: which of two groups survives a partition heal;
- out_of_sync: whether our epoch lost against a HELLO of our own group;
- should_create: when a joiner that hears no group founds one;
- SelfUpdate: when a member proposes a fresh leaf key (an MLS Update).

Times are seconds on one monotonic clock; keys are Ed25519 node public keys.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..crypto.mls_keys import MAX_OLD_EPOCHS

# A group's members send at most this many HELLOs per second together (their interval
# grows with the group), so periodic traffic per member stays bounded as groups grow.
HELLO_BUDGET_PER_S = 20.0
FOUND_WAIT_S = 1.0
FOUND_JITTER_S = 1.0
# A HELLO of our group showing a later epoch (or a fork) must persist this long before we
# rejoin: a COMMIT on its way arrives well within it.
SYNC_GRACE_S = 1.0
# The committer answers a joiner's HELLO (or another group's) at most this often.
ANSWER_GAP_S = 0.5


@dataclass(frozen=True)
class PrivateSettings:
    """A private VLAN's timing (docs/config.md) and what follows from it."""

    rekey_interval_s: float
    member_timeout_s: float
    epoch_grace_s: float
    hello_budget_per_s: float = HELLO_BUDGET_PER_S

    @property
    def hello_interval_s(self) -> float:
        return self.member_timeout_s / 3

    def hello_interval_for(self, members: int) -> float:
        """HELLO (and MAC probe) interval in a group of `members`: `H`, stretched so that the
        whole group sends at most `hello_budget_per_s` of them per second."""
        return max(self.hello_interval_s, members / self.hello_budget_per_s)

    def member_timeout_for(self, members: int) -> float:
        """A member of a group of `members` not heard for this long is not live."""
        return 3 * self.hello_interval_for(members)

    @property
    def join_wait_s(self) -> float:
        """How long a connected joiner that heard no group waits before founding one:
        members answer a joiner's HELLO at once, so this only covers a round trip."""
        return min(FOUND_WAIT_S, 2 * self.hello_interval_s)

    @property
    def join_jitter_s(self) -> float:
        """Founding waits a further random delay below this, so one founder goes first."""
        return min(FOUND_JITTER_S, self.hello_interval_s)

    @property
    def update_batch_s(self) -> float:
        """Epochs made only for Update proposals last at least this long: at most 8 of them
        fall in one grace window, half the old epochs a receiver keeps."""
        return self.epoch_grace_s / (MAX_OLD_EPOCHS // 2)


@dataclass(frozen=True)
class GroupView:
    """A group as a HELLO describes it."""

    tag: bytes
    members: int


@dataclass(frozen=True)
class EpochView:
    epoch: int
    mls_id: bytes


@dataclass(frozen=True)
class CommitPlan:
    add: tuple[bytes, ...] = ()  # member keys whose offered KeyPackage is added
    remove: tuple[int, ...] = ()  # leaf indexes
    rekey: bool = False
    updates: bool = False  # commit the Update proposals received this epoch

    @property
    def empty(self) -> bool:
        return not (self.add or self.remove or self.rekey or self.updates)


def live_keys(
    heard: Mapping[bytes, float], *, now: float, member_timeout: float, own: bytes
) -> set[bytes]:
    """Keys heard within the member timeout, and our own."""
    return {k for k, at in heard.items() if now - at < member_timeout} | {own}


def committer(members: Mapping[int, bytes], live: set[bytes]) -> int | None:
    """Leaf index of the committer: the lowest leaf whose member is live."""
    return min((leaf for leaf, key in members.items() if key in live), default=None)


def plan_commit(
    *,
    own_leaf: int,
    members: Mapping[int, bytes],
    heard: Mapping[bytes, float],
    since: Mapping[bytes, float],
    offers: Mapping[bytes, float],
    expired: Iterable[int] = (),
    now: float,
    member_timeout: float,
    epoch_since: float,
    rekey_interval: float,
    updates: bool = False,
    update_batch: float = 0.0,
) -> CommitPlan:
    """The committer's next commit.

    `heard`: last HELLO per key; `since`: when each member entered our view of
    the group (a new member is not timed out before it could say HELLO);
    `offers`: when a KeyPackage of each key arrived (targeting our group);
    `updates`: Update proposals of members are waiting for this epoch's commit; alone
    they are committed once the epoch is `update_batch` old, so that proposals arriving
    close together share one epoch (receivers keep a bounded number of old epochs).
    A KeyPackage from a key already in the group, newer than its entry, means
    that member restarted or lost the group: its old leaf is replaced.
    """
    remove: set[int] = set(expired)
    add: list[bytes] = []
    in_group = {key: leaf for leaf, key in members.items()}
    for leaf, key in members.items():
        last = max(heard.get(key, float("-inf")), since.get(key, float("-inf")))
        if now - last >= member_timeout:
            remove.add(leaf)
    for key, offered in sorted(offers.items()):
        old = in_group.get(key)
        if old is None:
            add.append(key)
        elif offered > since.get(key, float("-inf")):
            remove.add(old)
            add.append(key)
    remove.discard(own_leaf)
    rekey = not (add or remove) and now - epoch_since >= rekey_interval
    batch_due = bool(add or remove or rekey) or now - epoch_since >= update_batch
    return CommitPlan(tuple(add), tuple(sorted(remove)), rekey, updates and batch_due)


def winner(a: GroupView, b: GroupView) -> GroupView:
    """The group that survives when two meet: more members, then the lower tag."""
    return a if (-a.members, a.tag) <= (-b.members, b.tag) else b


def best_group(views: Iterable[GroupView]) -> GroupView | None:
    best: GroupView | None = None
    for v in views:
        best = v if best is None else winner(best, v)
    return best


def should_move(mine: GroupView, heard: Iterable[GroupView]) -> GroupView | None:
    """The other group we must join (its members rejoin nobody), or None to stay."""
    best = best_group(v for v in heard if v.tag != mine.tag)
    if best is None or winner(mine, best) is mine:
        return None
    return best


def out_of_sync(mine: EpochView, theirs: EpochView) -> bool:
    """Another member of our group is ahead (we missed a commit) or won a fork."""
    if theirs.epoch != mine.epoch:
        return theirs.epoch > mine.epoch
    return theirs.mls_id < mine.mls_id


def should_create(*, heard_groups: int, connected_for: float, join_wait: float) -> bool:
    """A joiner founds the group when, connected for `join_wait`, it heard no group."""
    return heard_groups == 0 and connected_for >= join_wait


class SelfUpdate:
    """When a member (not the committer, whose commits carry a path) proposes an Update.

    Due `rekey_interval` times a random factor in [0.75, 1) after its leaf key last
    changed (joining, its own commit, its Update committed): the jitter spreads the
    members' proposals over time. At most one proposal per epoch; if the epoch moves on
    without it (the commit came from another round), it is proposed again.
    """

    def __init__(self, rekey_interval: float, *, rng: Callable[[], float] = random.random) -> None:
        self.interval = rekey_interval
        self._rng = rng
        self.due = float("inf")
        self.proposed_epoch: int | None = None

    def refreshed(self, now: float) -> None:
        """Our leaf key just changed."""
        self.due = now + self.interval * (0.75 + 0.25 * self._rng())
        self.proposed_epoch = None

    def should_propose(self, *, now: float, epoch: int) -> bool:
        return now >= self.due and self.proposed_epoch != epoch

    def proposed(self, epoch: int) -> None:
        self.proposed_epoch = epoch
