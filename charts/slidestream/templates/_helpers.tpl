{{/* Names and labels shared by every template. */}}
{{- define "slidestream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "slidestream.labels" -}}
app.kubernetes.io/part-of: slidestream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "slidestream.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{/* Where the servers are: explicit values win, else the in-chart servers. */}}
{{- define "slidestream.kafkaBootstrap" -}}
{{- if .Values.kafka.bootstrap -}}{{ .Values.kafka.bootstrap }}
{{- else if .Values.inChart.kafka.enabled -}}{{ include "slidestream.fullname" . }}-kafka:9092
{{- else -}}{{ fail "set kafka.bootstrap, or inChart.kafka.enabled=true" }}
{{- end -}}
{{- end -}}

{{- define "slidestream.s3Endpoint" -}}
{{- if .Values.objectStore.endpoint -}}{{ .Values.objectStore.endpoint }}
{{- else if .Values.inChart.minio.enabled -}}http://{{ include "slidestream.fullname" . }}-minio:9000
{{- else -}}{{ fail "set objectStore.endpoint, or inChart.minio.enabled=true" }}
{{- end -}}
{{- end -}}

{{/* Whether the services have PostgreSQL (yours or the chart's); empty: the embedded SQLite. */}}
{{- define "slidestream.hasDatabase" -}}
{{- if or .Values.database.existingSecret .Values.inChart.postgres.enabled -}}true{{- end -}}
{{- end -}}

{{/*
Where one service's DATABASE_URL comes from, as "<Secret> <key>" (dict "root" $ "name" <service>):
its own key of database.existingSecret, else its own Secret of the in-chart PostgreSQL (its own
role); empty for SQLite. A pod is given its own URL only.
*/}}
{{- define "slidestream.databaseUrlSource" -}}
{{- if .root.Values.database.existingSecret -}}
{{- printf "%s database_url_%s" .root.Values.database.existingSecret .name -}}
{{- else if .root.Values.inChart.postgres.enabled -}}
{{- printf "%s database_url" (include "slidestream.postgresServiceSecret" .) -}}
{{- end -}}
{{- end -}}

{{/* The in-chart PostgreSQL: a service's Secret (password, database_url) and role. */}}
{{- define "slidestream.postgresServiceSecret" -}}
{{- printf "%s-postgres-%s" (include "slidestream.fullname" .root) .name -}}
{{- end -}}

{{- define "slidestream.postgresRole" -}}
{{- printf "slidestream_%s" (.name | replace "-" "_") -}}
{{- end -}}

{{/*
A Job named after its content (dict "root" $ "name" <what> "content" <the rendered spec and
script>): a changed Job is a new Job (a Job's pod template cannot be updated in place), an
unchanged one is left as it ran.
*/}}
{{- define "slidestream.jobName" -}}
{{- printf "%s-%s-%s" (include "slidestream.fullname" .root | trunc 40 | trimSuffix "-") .name (.content | sha256sum | trunc 10) -}}
{{- end -}}

{{/*
Every topic of slidestream_contracts.topics.all_topics(), one "<name> <partitions>" per line:
the pipeline topics with kafka.partitions, one partition per dead-letter topic (read by people
and replay tools). tests/charts checks the list against the contracts.
*/}}
{{- define "slidestream.topics" -}}
{{- range list "slides.uploaded.v1" "slides.rejected.v1" "slides.deidentified.v1" "slides.converted.v1" "slides.qc.v1" "slides.inferred.v1" "inference.requests.v1" "slides.status.v1" "slides.fixes.v1" }}
{{ . }} {{ $.Values.kafka.partitions }}
{{- end }}
{{- range list "upload" "deid" "convert" "qc" "inference" "search" "catalog" }}
{{ printf "dlq.%s.v1" . }} 1
{{- end }}
{{- end -}}

{{- define "slidestream.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s/%s:%s" .root.Values.image.registry .root.Values.image.repository .name $tag -}}
{{- end -}}

{{/*
Triton's name for the models bucket on the object store: s3://<scheme>://<host>:<port>/<bucket>.
Triton's S3 file system requires the port in this form, so a port-less endpoint gets its
scheme's default.
*/}}
{{- define "slidestream.tritonModelRepository" -}}
{{- $url := urlParse (include "slidestream.s3Endpoint" .) -}}
{{- $host := $url.host -}}
{{- if not (regexMatch ":[0-9]+$" $host) -}}
{{- $host = printf "%s:%s" $host (ternary "443" "80" (eq $url.scheme "https")) -}}
{{- end -}}
{{- printf "s3://%s://%s/%s" $url.scheme $host .Values.triton.modelsBucket -}}
{{- end -}}

{{- define "slidestream.tritonName" -}}
{{- printf "%s-triton" (include "slidestream.fullname" .) -}}
{{- end -}}

{{/*
The headless Service whose DNS name has one A record per ready Triton pod: the inference
service loads models on each replica through it (explicit model control loads only where asked).
*/}}
{{- define "slidestream.tritonReplicasName" -}}
{{- printf "%s-replicas" (include "slidestream.tritonName" .) -}}
{{- end -}}

{{/* The Milvus the catalog uses: the chart's own Milvus proxy, else milvus.uri. */}}
{{- define "slidestream.milvusUri" -}}
{{- if .Values.milvus.enabled -}}http://{{ .Release.Name }}-milvus:19530
{{- else -}}{{ .Values.milvus.uri }}
{{- end -}}
{{- end -}}

{{/* The Secret tusd and the upload service share: the hooks secret and the internal token. */}}
{{- define "slidestream.tusdHooksSecret" -}}
{{- .Values.services.upload.tusdHooks.existingSecret | default (printf "%s-tusd-hooks" (include "slidestream.fullname" .)) -}}
{{- end -}}

{{/* The port of a URL: its own, else its scheme's default. */}}
{{- define "slidestream.urlPort" -}}
{{- $url := urlParse . -}}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $url.host) -}}
{{- $port | default (ternary "443" "80" (eq $url.scheme "https")) -}}
{{- end -}}
