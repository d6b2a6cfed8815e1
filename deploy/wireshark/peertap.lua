-- PeerTap packet dissector for Wireshark and tshark (protocol version 4).
--
-- Decodes the PeerTap packets in traces written by `peertap run --trace FILE.pcapng`:
-- link type LINKTYPE_USER0 (147), one interface per trunk, each packet exactly as
-- after trunk decryption. Every header field of DATA, ANNOUNCE, CONTROL and INTRO
-- is named (docs/protocol.md sections 4, 8a and 10.1); encrypted payloads and the MLS
-- messages in CONTROL bodies stay opaque.
--
-- Use:  tshark -X lua_script:deploy/wireshark/peertap.lua -r node.pcapng -V
-- or copy this file into Wireshark's personal Lua plugins folder
-- (Help > About Wireshark > Folders).

local peertap = Proto("peertap", "PeerTap")

local TYPES = { [1] = "DATA", [2] = "ANNOUNCE", [3] = "CONTROL", [4] = "INTRO" }
local KINDS = {
    [1] = "HELLO", [2] = "KEYPACKAGE", [3] = "COMMIT", [4] = "WELCOME",
    [5] = "PROPOSAL", [6] = "MACPROBE", [16] = "REVOCATION",
}
local PREFIX_LEN = 4
local DATA_HEADER_LEN = 68
local TAG_LEN = 16
local SIGNATURE_LEN = 64

local f = {
    version = ProtoField.uint8("peertap.version", "Version"),
    type = ProtoField.uint8("peertap.type", "Type", base.DEC, TYPES),
    hop_limit = ProtoField.uint8("peertap.hop_limit", "Hop limit"),
    flags = ProtoField.uint8("peertap.flags", "Flags", base.HEX),
    fragment = ProtoField.bool("peertap.flags.fragment", "Fragment", 8, nil, 0x01),
    sender_tags = ProtoField.bool("peertap.flags.sender_tags", "Sender tags", 8, nil, 0x02),
    bundle = ProtoField.bool("peertap.flags.bundle", "Bundle", 8, nil, 0x04),
    trailer = ProtoField.bytes("peertap.sender_tags", "Sender tags (receiver leaf, tag)"),
    tag_count = ProtoField.uint16("peertap.sender_tags.count", "Sender tag entries"),
    vlan_id = ProtoField.bytes("peertap.vlan_id", "VLAN-ID"),
    mls_id = ProtoField.bytes("peertap.mls_id", "MLS-ID"),
    vft = ProtoField.bytes("peertap.vft", "VFT"),
    sender = ProtoField.bytes("peertap.sender", "Sender id"),
    counter = ProtoField.uint64("peertap.counter", "Counter"),
    ciphertext = ProtoField.bytes("peertap.ciphertext", "Ciphertext"),
    tag = ProtoField.bytes("peertap.tag", "AES-GCM tag"),
    origin = ProtoField.bytes("peertap.origin", "Origin (node public key)"),
    sequence = ProtoField.uint64("peertap.sequence", "Sequence"),
    distance = ProtoField.uint8("peertap.distance", "Distance"),
    count = ProtoField.uint16("peertap.count", "Tokens"),
    token = ProtoField.bytes("peertap.token", "VFT"),
    timestamp = ProtoField.uint64("peertap.timestamp", "Timestamp (microseconds since the Unix epoch)"),
    kind = ProtoField.uint8("peertap.kind", "Kind", base.DEC, KINDS),
    signer = ProtoField.bytes("peertap.signer", "Signer (node public key)"),
    body = ProtoField.bytes("peertap.body", "Body"),
    signature = ProtoField.bytes("peertap.signature", "Ed25519 signature"),
    lowest = ProtoField.uint8("peertap.intro.lowest", "Lowest protocol version"),
    highest = ProtoField.uint8("peertap.intro.highest", "Highest protocol version"),
    roles = ProtoField.uint8("peertap.intro.roles", "Roles", base.HEX),
    relay = ProtoField.bool("peertap.intro.roles.relay", "Relay", 8, nil, 0x01),
    credentials = ProtoField.uint8("peertap.intro.credentials", "Credentials"),
    credential_len = ProtoField.uint16("peertap.intro.credential_length", "Credential length"),
    credential = ProtoField.bytes("peertap.intro.credential", "Node credential"),
}
peertap.fields = {
    f.version, f.type, f.hop_limit, f.flags, f.fragment, f.sender_tags, f.bundle, f.trailer,
    f.tag_count, f.vlan_id, f.mls_id, f.vft,
    f.sender, f.counter, f.ciphertext, f.tag, f.origin, f.sequence, f.distance, f.count,
    f.token, f.timestamp, f.kind, f.signer, f.body, f.signature, f.lowest, f.highest,
    f.roles, f.relay, f.credentials, f.credential_len, f.credential,
}

local ef_short = ProtoExpert.new("peertap.short", "Packet shorter than its header",
    expert.group.MALFORMED, expert.severity.ERROR)
local ef_length = ProtoExpert.new("peertap.length", "Length disagrees with the entry count",
    expert.group.MALFORMED, expert.severity.WARN)
local ef_version = ProtoExpert.new("peertap.unknown_version", "Unknown protocol version",
    expert.group.UNDECODED, expert.severity.WARN)
peertap.experts = { ef_short, ef_length, ef_version }

local function short(tree, buf)
    tree:add_proto_expert_info(ef_short)
    return buf:len()
end

local function data(buf, tree, pinfo)
    if buf:len() < DATA_HEADER_LEN + TAG_LEN then return short(tree, buf) end
    tree:add(f.vlan_id, buf(4, 16))
    tree:add(f.mls_id, buf(20, 16))
    tree:add(f.vft, buf(36, 16))
    tree:add(f.sender, buf(52, 8))
    tree:add(f.counter, buf(60, 8))
    local stop = buf:len()
    if math.floor(buf(3, 1):uint() / 2) % 2 == 1 then
        -- private VLAN: n x (leaf u32, tag 8) || n (u16) after the AES-GCM tag
        local count = buf(stop - 2, 2):uint()
        local len = 12 * count + 2
        if stop - len >= DATA_HEADER_LEN + TAG_LEN then
            stop = stop - len
            local t = tree:add(f.trailer, buf(stop, len))
            t:add(f.tag_count, buf(stop + len - 2, 2))
        end
    end
    local n = stop - DATA_HEADER_LEN - TAG_LEN
    if n > 0 then tree:add(f.ciphertext, buf(DATA_HEADER_LEN, n)) end
    tree:add(f.tag, buf(stop - TAG_LEN, TAG_LEN))
    pinfo.cols.info:append(string.format(" vlan %s counter %s",
        buf(4, 4):bytes():tohex():lower(), buf(60, 8):uint64()))
end

local function announce(buf, tree, pinfo)
    -- prefix | origin 32 | VLAN-ID 16 | sequence u64 | distance u8 | count u16
    -- | count x VFT 16 | signature 64
    local head = PREFIX_LEN + 32 + 16 + 8 + 1 + 2
    if buf:len() < head + SIGNATURE_LEN then return short(tree, buf) end
    tree:add(f.origin, buf(4, 32))
    tree:add(f.vlan_id, buf(36, 16))
    tree:add(f.sequence, buf(52, 8))
    tree:add(f.distance, buf(60, 1))
    local count = buf(61, 2):uint()
    local count_item = tree:add(f.count, buf(61, 2))
    if buf:len() ~= head + 16 * count + SIGNATURE_LEN then
        count_item:add_proto_expert_info(ef_length)
    end
    local offset = head
    for _ = 1, count do
        if offset + 16 > buf:len() - SIGNATURE_LEN then break end
        tree:add(f.token, buf(offset, 16))
        offset = offset + 16
    end
    tree:add(f.signature, buf(buf:len() - SIGNATURE_LEN, SIGNATURE_LEN))
    pinfo.cols.info:append(string.format(" vlan %s distance %d, %d tokens",
        buf(36, 4):bytes():tohex():lower(), buf(60, 1):uint(), count))
end

local function control(buf, tree, pinfo)
    local head = PREFIX_LEN + 8 + 16 + 1 + 32
    if buf:len() < head + SIGNATURE_LEN then return short(tree, buf) end
    local ts = tree:add(f.timestamp, buf(4, 8))
    local micros = buf(4, 8):uint64()
    ts:append_text(" (" .. os.date("!%Y-%m-%d %H:%M:%S", (micros / 1000000):tonumber()) .. " UTC)")
    tree:add(f.vlan_id, buf(12, 16))
    tree:add(f.kind, buf(28, 1))
    tree:add(f.signer, buf(29, 32))
    local n = buf:len() - head - SIGNATURE_LEN
    if n > 0 then tree:add(f.body, buf(head, n)) end
    tree:add(f.signature, buf(buf:len() - SIGNATURE_LEN, SIGNATURE_LEN))
    pinfo.cols.info:append(" " .. (KINDS[buf(28, 1):uint()] or "kind ?"))
end

local function intro(buf, tree, pinfo)
    -- prefix | lowest u8 | highest u8 | roles u8 | count u8 | count x (u16 length, credential)
    if buf:len() < PREFIX_LEN + 4 then return short(tree, buf) end
    tree:add(f.lowest, buf(4, 1))
    tree:add(f.highest, buf(5, 1))
    local roles = tree:add(f.roles, buf(6, 1))
    roles:add(f.relay, buf(6, 1))
    local count = buf(7, 1):uint()
    tree:add(f.credentials, buf(7, 1))
    local offset = PREFIX_LEN + 4
    for _ = 1, count do
        if offset + 2 > buf:len() then return short(tree, buf) end
        local n = buf(offset, 2):uint()
        if offset + 2 + n > buf:len() then return short(tree, buf) end
        tree:add(f.credential_len, buf(offset, 2))
        if n > 0 then tree:add(f.credential, buf(offset + 2, n)) end
        offset = offset + 2 + n
    end
    pinfo.cols.info:append(string.format(" versions %d..%d, %d credentials",
        buf(4, 1):uint(), buf(5, 1):uint(), count))
end

local BY_TYPE = { [1] = data, [2] = announce, [3] = control, [4] = intro }

function peertap.dissector(buf, pinfo, root)
    pinfo.cols.protocol = "PeerTap"
    local tree = root:add(peertap, buf())
    if buf:len() < PREFIX_LEN then return short(tree, buf) end
    local version = buf(0, 1):uint()
    local kind = buf(1, 1):uint()
    tree:add(f.version, buf(0, 1))
    tree:add(f.type, buf(1, 1))
    tree:add(f.hop_limit, buf(2, 1))
    local flags = tree:add(f.flags, buf(3, 1))
    flags:add(f.fragment, buf(3, 1))
    flags:add(f.sender_tags, buf(3, 1))
    flags:add(f.bundle, buf(3, 1))
    pinfo.cols.info = TYPES[kind] or string.format("type %d", kind)
    -- INTRO keeps its frozen prefix version 2 (docs/protocol.md, section 9).
    if version ~= 4 and not (version == 2 and kind == 4) then
        tree:add_proto_expert_info(ef_version)
        return buf:len()
    end
    local decode = BY_TYPE[kind]
    if decode then decode(buf, tree, pinfo) end
    return buf:len()
end

DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, peertap)
