{{/*
The operator's permissions, split by scope. Namespaced rules go into the
ClusterRole when all namespaces are watched, and into one Role per namespace
when watchNamespaces is set. They follow peertap.operator.rbac_needs.RBAC_RULES
(tests/chart/test_chart_rbac.py compares them); the only additions are the
finalizers subresource grants, and the webhook configurations are narrowed to this
release's by name.
*/}}

{{- define "peertap.namespacedRules" -}}
- apiGroups: ["peertap.io"]
  resources: ["cryptovlans", "mvlans"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["peertap.io"]
  resources: ["cryptovlans/status", "mvlans/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["peertap.io"]
  # Owner references with blockOwnerDeletion (relay and VLAN objects) need this
  # where the OwnerReferencesPermissionEnforcement admission plugin is enabled.
  resources: ["cryptovlans/finalizers", "mvlans/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["secrets", "configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["list", "create", "patch"]
# Leader election between the operator replicas (kopf peering, one object per namespace).
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}

{{- define "peertap.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
# namespaces: kopf lists them when watching all namespaces; nodes: NodePort
# relays publish node addresses in MVLAN status.relayAddresses.
- apiGroups: [""]
  resources: ["namespaces", "nodes"]
  verbs: ["get", "list", "watch"]
# Leader election between the operator replicas (kopf peering, cluster-wide object).
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- if .Values.webhook.enabled }}
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]
  resourceNames: [{{ include "peertap.webhookConfigName" . | quote }}]
  verbs: ["get", "list", "watch", "patch", "update"]
{{- end }}
{{- end }}

{{/*
The serving certificate Secret lives in the release namespace; when that
namespace is not watched, this Role is the only grant on it. create cannot be
limited by resourceNames, so it is a separate rule.
*/}}
{{- define "peertap.webhookCertRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ include "peertap.webhookCertSecretName" . | quote }}]
  verbs: ["get", "patch", "update"]
{{- end }}
