{{/*
Names and labels. Every name is scoped to the release, so two releases live in one cluster side by side.
*/}}
{{- define "s1mple.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-s1mple, or the release name alone when it already contains the chart name. */}}
{{- define "s1mple.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "s1mple.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "s1mple.selectorLabels" -}}
app.kubernetes.io/name: {{ include "s1mple.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "s1mple.labels" -}}
{{ include "s1mple.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: s1mple
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "s1mple.chart" . }}
{{- end -}}

{{- define "s1mple.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "s1mple.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image; the tag defaults to the chart's appVersion. */}}
{{- define "s1mple.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Cluster mode: the ClusterRole is cluster-scoped, so its name also carries the release namespace. */}}
{{- define "s1mple.clusterRoleName" -}}
{{- printf "%s-%s" (include "s1mple.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}
