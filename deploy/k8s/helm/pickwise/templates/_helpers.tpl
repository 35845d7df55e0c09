{{/* Names and labels shared by every template. */}}

{{- define "pickwise.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{- define "pickwise.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pickwise.labels" -}}
app.kubernetes.io/name: {{ include "pickwise.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pickwise
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "pickwise.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pickwise.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pickwise.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | toString) -}}
{{- end -}}

{{- define "pickwise.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pickwise.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* the secret-backed environment every container gets (keys may be absent: optional) */}}
{{- define "pickwise.secretEnv" -}}
- name: PICKWISE_POSTGRES_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: postgresUrl, optional: true}
- name: PICKWISE_API_KEYS
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: apiKeys, optional: true}
- name: PICKWISE_ADMIN_KEY
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: adminKey, optional: true}
- name: PICKWISE_GROQ_API_KEY
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: groqApiKey, optional: true}
- name: PICKWISE_OPENAI_API_KEY
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: openaiApiKey, optional: true}
- name: PICKWISE_MILVUS_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: milvusToken, optional: true}
{{- end -}}

{{/* volumes every pod has: writable /tmp (the root filesystem is read-only) and, where asked, the catalog */}}
{{- define "pickwise.catalogVolume" -}}
{{- if eq .Values.catalog.source "hostPath" }}
- name: catalog
  hostPath:
    path: {{ .Values.catalog.hostPath }}
    type: Directory
{{- else if eq .Values.catalog.source "persistentVolumeClaim" }}
- name: catalog
  persistentVolumeClaim:
    claimName: {{ .Values.catalog.claimName }}
    readOnly: true
{{- else if eq .Values.catalog.source "emptyDir" }}
- name: catalog
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "pickwise.catalogMount" -}}
{{- if ne .Values.catalog.source "image" }}
- name: catalog
  mountPath: /data
  readOnly: true
{{- end }}
{{- end -}}
