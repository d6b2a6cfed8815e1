{{/*
The operator's permissions, split by scope. Namespaced rules go into the
ClusterRole when all namespaces are watched, and into one Role per namespace
when watchNamespaces is set. Keep in step with the operator's
peertap.operator.rbac_needs.RBAC_RULES (tests/chart/test_rbac.py compares them).
*/}}

{{- define "peertap.namespacedRules" -}}
- apiGroups: ["peertap.io"]
  resources: ["cryptovlans", "mvlans"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["peertap.io"]
  resources: ["cryptovlans/status", "mvlans/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["peertap.io"]
  # Owner references with blockOwnerDeletion on relay Deployments need this.
  resources: ["cryptovlans/finalizers", "mvlans/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["secrets", "configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{- define "peertap.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
# Node addresses go into an MVLAN's status.relayAddresses for NodePort relays.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list"]
{{- if .Values.webhook.enabled }}
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]
  resourceNames: [{{ include "peertap.webhookConfigName" . | quote }}]
  verbs: ["get", "patch"]
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
