{{/*
Names, labels and computed settings shared by the PeerTap templates.
*/}}

{{- define "peertap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> unless the release name already contains the chart
name. Kept to 52 characters so suffixes like "-webhook-cert" stay within 63.
*/}}
{{- define "peertap.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "peertap.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "peertap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "peertap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "peertap.labels" -}}
helm.sh/chart: {{ include "peertap.chart" . }}
{{ include "peertap.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: peertap
{{- end }}

{{- define "peertap.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "peertap.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "peertap.operatorImage" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) }}
{{- end }}

{{- define "peertap.sidecarImage" -}}
{{- printf "%s:%s" .Values.sidecar.image.repository (default .Chart.AppVersion .Values.sidecar.image.tag) }}
{{- end }}

{{- define "peertap.webhookServiceName" -}}
{{- printf "%s-webhook" (include "peertap.fullname" .) }}
{{- end }}

{{- define "peertap.metricsServiceName" -}}
{{- printf "%s-metrics" (include "peertap.fullname" .) }}
{{- end }}

{{/*
Both the MutatingWebhookConfiguration and the ValidatingWebhookConfiguration
carry this name; the operator patches their caBundle by it.
*/}}
{{- define "peertap.webhookConfigName" -}}
{{- include "peertap.fullname" . }}
{{- end }}

{{- define "peertap.webhookCertSecretName" -}}
{{- default (printf "%s-webhook-cert" (include "peertap.fullname" .)) .Values.webhook.certSecretName }}
{{- end }}

{{/*
caBundle of one webhook in the live configuration, so an upgrade renders the
bundle the operator already patched in instead of blanking it until the new
operator pod starts. Empty on install and in offline rendering (lookup returns
nothing there). Call with (dict "ctx" $ "kind" "MutatingWebhookConfiguration"
"webhook" "pods.peertap.io").
*/}}
{{- define "peertap.liveCaBundle" -}}
{{- $live := lookup "admissionregistration.k8s.io/v1" .kind "" (include "peertap.webhookConfigName" .ctx) }}
{{- if $live }}
{{- range $live.webhooks }}
{{- if and (eq .name $.webhook) .clientConfig.caBundle }}
{{- .clientConfig.caBundle }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
clientConfig for one webhook path of the operator's Service.
Call with (dict "ctx" $ "kind" KIND "webhook" NAME "path" PATH).
*/}}
{{- define "peertap.webhookClientConfig" -}}
service:
  name: {{ include "peertap.webhookServiceName" .ctx }}
  namespace: {{ .ctx.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- $bundle := include "peertap.liveCaBundle" . }}
{{- if $bundle }}
caBundle: {{ $bundle }}
{{- end }}
{{- end }}

{{/*
Restricts a webhook to the watched namespaces when watchNamespaces is set.
*/}}
{{- /*
Which namespaces the webhooks see: never kube-system nor the operator's own namespace
(an operator outage must not block the control plane or the operator's own pods), and
only the watched namespaces when watchNamespaces is set.
*/ -}}
{{- define "peertap.webhookNamespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: ["kube-system", {{ .Release.Namespace | quote }}]
    {{- if .Values.watchNamespaces }}
    - key: kubernetes.io/metadata.name
      operator: In
      values:
        {{- toYaml .Values.watchNamespaces | nindent 8 }}
    {{- end }}
{{- end }}
