{{/*
NetworkPolicy building blocks (networkpolicies.yaml). A rule is
(dict "direction" "from"|"to" "ports" (list N…) ["protocols" (list "TCP" "UDP")] and either
"names" (list of this release's components: their pods; no rule when the list is empty) or
"peers" (a NetworkPolicyPeer list from the values; empty admits any address)).
*/}}
{{- define "slidestream.np.rule" -}}
{{- if or (not (hasKey . "names")) .names -}}
- ports:
    {{- range $port := .ports }}
    {{- range $protocol := ($.protocols | default (list "TCP")) }}
    - {port: {{ $port }}, protocol: {{ $protocol }}}
    {{- end }}
    {{- end }}
  {{- if hasKey . "names" }}
  {{ .direction }}:
    - podSelector:
        matchLabels: {app.kubernetes.io/instance: {{ .root.Release.Name }}}
        matchExpressions:
          - {key: app.kubernetes.io/name, operator: In, values: {{ toJson .names }}}
  {{- else if .peers }}
  {{ .direction }}: {{- toYaml .peers | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Of the components named, those this release runs. */}}
{{- define "slidestream.np.running" -}}
{{- $running := list -}}
{{- range .names -}}
{{- $svc := get $.root.Values.services . -}}
{{- if or (and $svc $svc.enabled) (and (eq . "tusd") $.root.Values.tusd.enabled) (and (eq . "triton") $.root.Values.triton.enabled) -}}
{{- $running = append $running . -}}
{{- end -}}
{{- end -}}
{{- toJson $running -}}
{{- end -}}

{{/* Egress to a server of this chart (pods named `name` on `ports`) or to one outside it. */}}
{{- define "slidestream.np.server" -}}
{{- if .external -}}
{{- include "slidestream.np.rule" (dict "direction" "to" "ports" .ports "peers" .root.Values.networkPolicy.externalTo) -}}
{{- else -}}
{{- include "slidestream.np.rule" (dict "direction" "to" "ports" .ports "names" (list .name) "root" .root) -}}
{{- end -}}
{{- end -}}

{{/* Name lookups, in the cluster's DNS wherever it runs (CoreDNS pods, a node-local cache). */}}
{{- define "slidestream.np.dns" -}}
{{- include "slidestream.np.rule" (dict "direction" "to" "ports" (list 53) "protocols" (list "UDP" "TCP") "peers" (list)) -}}
{{- end -}}

{{/* Kafka: kafka.bootstrap's ports, else the in-chart broker (as slidestream.kafkaBootstrap). */}}
{{- define "slidestream.np.kafka" -}}
{{- $ports := list -}}
{{- range splitList "," .Values.kafka.bootstrap -}}
{{- $ports = append $ports (regexFind "[0-9]+$" (regexFind ":[0-9]+$" (trim .)) | default "9092" | int) -}}
{{- end -}}
{{- $external := not (empty .Values.kafka.bootstrap) -}}
{{- include "slidestream.np.server" (dict "root" . "external" $external "ports" (ternary (uniq $ports) (list 9092) $external) "name" "kafka") -}}
{{- end -}}

{{/* The object store: objectStore.endpoint's port, else the in-chart MinIO. */}}
{{- define "slidestream.np.s3" -}}
{{- $external := not (empty .Values.objectStore.endpoint) -}}
{{- $port := ternary (include "slidestream.urlPort" .Values.objectStore.endpoint) "9000" $external | int -}}
{{- include "slidestream.np.server" (dict "root" . "external" $external "ports" (list $port) "name" "minio") -}}
{{- end -}}

{{/* PostgreSQL: database.existingSecret's (at databasePort), else the in-chart one; SQLite: none. */}}
{{- define "slidestream.np.database" -}}
{{- if .Values.database.existingSecret -}}
{{- include "slidestream.np.server" (dict "root" . "external" true "ports" (list .Values.networkPolicy.databasePort)) -}}
{{- else if .Values.inChart.postgres.enabled -}}
{{- include "slidestream.np.server" (dict "root" . "external" false "ports" (list 5432) "name" "postgres") -}}
{{- end -}}
{{- end -}}

{{/* The OTLP collector, when traces are exported. */}}
{{- define "slidestream.np.otel" -}}
{{- with .Values.otel.endpoint -}}
{{- include "slidestream.np.server" (dict "root" $ "external" true "ports" (list (include "slidestream.urlPort" . | int))) -}}
{{- end -}}
{{- end -}}

{{/* What every slidestream service reaches: DNS, Kafka, the object store, its database, OTLP. */}}
{{- define "slidestream.np.serviceEgress" -}}
{{ include "slidestream.np.dns" . }}
{{ include "slidestream.np.kafka" . }}
{{ include "slidestream.np.s3" . }}
{{- with include "slidestream.np.database" . }}
{{ . }}
{{- end }}
{{- with include "slidestream.np.otel" . }}
{{ . }}
{{- end }}
{{- end -}}

{{- define "slidestream.np.metadata" -}}
metadata:
  name: {{ printf "%s-%s" (include "slidestream.fullname" .root) .name }}
  labels:
    {{- include "slidestream.labels" .root | nindent 4 }}
    app.kubernetes.io/name: {{ .name }}
spec:
  podSelector:
    matchLabels:
      {{- include "slidestream.selector" . | nindent 6 }}
{{- end -}}
