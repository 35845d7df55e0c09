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

{{/* repository@digest when image.digest is set (what runs is then exactly what was scanned), else repository:tag */}}
{{- define "pickwise.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* one ServiceAccount per component: (dict "root" $ "component" "gateway") */}}
{{- define "pickwise.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- printf "%s-%s" (include "pickwise.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- default "default" .root.Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* secret key in secrets.name -> environment variable */}}
{{- define "pickwise.secretEnvNames" -}}
postgresUrl: PICKWISE_POSTGRES_URL
apiKeys: PICKWISE_API_KEYS
adminKey: PICKWISE_ADMIN_KEY
groqApiKey: PICKWISE_GROQ_API_KEY
openaiApiKey: PICKWISE_OPENAI_API_KEY
milvusToken: PICKWISE_MILVUS_TOKEN
{{- end -}}

{{/* the secret-backed environment of one container, only the keys it needs (keys may be absent: optional):
     (dict "root" $ "keys" (list "postgresUrl")) */}}
{{- define "pickwise.secretEnv" -}}
{{- $names := include "pickwise.secretEnvNames" . | fromYaml -}}
{{- range $key := .keys }}
{{- if not (hasKey $names $key) }}
{{- fail (printf "unknown secret key %q (one of: %s)" $key (keys $names | sortAlpha | join ", ")) }}
{{- end }}
- name: {{ get $names $key }}
  valueFrom:
    secretKeyRef: {name: {{ $.root.Values.secrets.name }}, key: {{ $key }}, optional: true}
{{- end }}
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

{{/* the gateway paths the Ingress publishes (/static: the page's own script and style) */}}
{{- define "pickwise.ingressPaths" -}}
- {path: /, pathType: Exact}
- {path: /static, pathType: Prefix}
- {path: /v1, pathType: Prefix}
{{- if .Values.ingress.exposeDocs }}
- {path: /docs, pathType: Prefix}
- {path: /openapi.json, pathType: Exact}
{{- end }}
{{- end -}}
