{{/*
One slidestream service: Deployment + Service (+ KEDA ScaledObject, + PodDisruptionBudget, + the
PersistentVolumeClaim of its SQLite file). Called by services.yaml with
(dict "root" $ "name" <service> "svc" <its values>).
*/}}
{{- define "slidestream.service" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $svc := .svc -}}
{{- $full := printf "%s-%s" (include "slidestream.fullname" $root) $name -}}
{{- $pod := $root.Values.podDefaults -}}
{{- $database := include "slidestream.databaseUrlSource" (dict "root" $root "name" $name) -}}
{{- $dataClaim := printf "%s-data" $full -}}
{{- if not $database }}
{{- /* Every service keeps state: tokens, decisions, the vault, the retention schedule, delivery records. */}}
{{- if not $root.Values.persistence.enabled }}
{{- fail (printf "services.%s keeps state that must survive its pods (tokens, decisions, the vault, the retention schedule): set database.existingSecret (your PostgreSQL), or inChart.postgres.enabled=true, or persistence.enabled=true (SQLite on a PersistentVolumeClaim per service); SQLite on an emptyDir would be lost with the pod" $name) }}
{{- end }}
{{- if and $root.Values.keda.enabled $svc.consumes }}
{{- fail (printf "keda.enabled would scale services.%s, whose SQLite file has one writer: give the services PostgreSQL (database.existingSecret or inChart.postgres.enabled=true)" $name) }}
{{- end }}
{{- end }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $full }}
  labels:
    {{- include "slidestream.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ $name }}
    app.kubernetes.io/component: service
spec:
  {{- if not (and $root.Values.keda.enabled $svc.consumes) }}
  replicas: {{ if $database }}{{ $svc.replicas }}{{ else }}{{ min 1 $svc.replicas }}{{ end }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "slidestream.selector" (dict "root" $root "name" $name) | nindent 6 }}
  {{- if not $database }}
  strategy: {type: Recreate}  # SQLite on its claim: one writer at a time
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "slidestream.labels" $root | nindent 8 }}
        app.kubernetes.io/name: {{ $name }}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $svc.port | quote }}
        prometheus.io/path: /metrics
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext: {{- toYaml $pod.securityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds | default $pod.terminationGracePeriodSeconds }}
      {{- with ($svc.nodeSelector | default $pod.nodeSelector) }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($svc.tolerations | default $pod.tolerations) }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($svc.affinity | default $pod.affinity) }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $name }}
          image: {{ include "slidestream.image" (dict "root" $root "name" $name) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          securityContext: {{- toYaml $pod.containerSecurityContext | nindent 12 }}
          ports:
            - {name: http, containerPort: {{ $svc.port }}}
            {{- with $svc.hooksPort }}
            - {name: hooks, containerPort: {{ . }}}
            {{- end }}
          env:
            - {name: SERVICE_NAME, value: {{ $name | quote }}}
            - {name: HTTP_HOST, value: "0.0.0.0"}
            - {name: HTTP_PORT, value: {{ $svc.port | quote }}}
            - {name: LOG_JSON, value: "true"}
            - {name: DATA_DIR, value: /var/lib/slidestream}
            - {name: WORK_DIR, value: /scratch}
            - {name: KAFKA_BOOTSTRAP, value: {{ include "slidestream.kafkaBootstrap" $root | quote }}}
            - {name: S3_ENDPOINT, value: {{ include "slidestream.s3Endpoint" $root | quote }}}
            - {name: S3_REGION, value: {{ $root.Values.objectStore.region | quote }}}
            {{- with $root.Values.otel.endpoint }}
            - {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ . | quote }}}
            {{- end }}
            {{- if eq $name "deid" }}
            - {name: PSEUDONYM_KEY_FILE, value: /run/secrets/slidestream-pseudonym/pseudonym_key}
            - {name: PSEUDONYM_KEY_VERSION, value: {{ $svc.pseudonymKey.version | quote }}}
            - {name: VAULT_KEY_FILE, value: {{ printf "/run/secrets/slidestream-vault/vault_key_%v" $svc.vaultKey.id | quote }}}
            - {name: VAULT_KEY_ID, value: {{ $svc.vaultKey.id | quote }}}
            {{- with $svc.vaultKey.retiredIds }}
            {{- $retired := dict }}
            {{- range . }}
            {{- $_ := set $retired (toString .) (printf "/run/secrets/slidestream-vault/vault_key_%v" .) }}
            {{- end }}
            - {name: VAULT_RETIRED_KEY_FILES, value: {{ $retired | toJson | quote }}}
            {{- end }}
            {{- end }}
            {{- if eq $name "catalog" }}
            {{- with include "slidestream.milvusUri" $root }}
            - {name: MILVUS_URI, value: {{ . | quote }}}
            {{- end }}
            {{- end }}
            {{- if eq $name "inference" }}
            {{- if $root.Values.triton.enabled }}
            - {name: TRITON_GRPC, value: {{ printf "%s:8001" (include "slidestream.tritonName" $root) | quote }}}
            - {name: TRITON_HTTP, value: {{ printf "http://%s:8000" (include "slidestream.tritonName" $root) | quote }}}
            - {name: TRITON_REPLICAS_DNS, value: {{ include "slidestream.tritonReplicasName" $root | quote }}}
            {{- end }}
            - {name: TRITON_GPUS, value: {{ $root.Values.triton.gpus | quote }}}
            - {name: MODELS_BUCKET, value: {{ $root.Values.triton.modelsBucket | quote }}}
            {{- end }}
            {{- if $svc.apiTokens }}
            - {name: API_TOKENS_FILE, value: /run/secrets/slidestream-api-tokens/api_tokens.json}
            {{- end }}
            {{- if $svc.hooksPort }}
            # tusd's hooks on their own port; the secret from the projected Secret below.
            - {name: HOOKS_PORT, value: {{ $svc.hooksPort | quote }}}
            - {name: TUSD_HOOKS_SECRET_FILE, value: /run/secrets/slidestream/tusd_hooks_secret}
            {{- if $root.Values.tusd.enabled }}
            - {name: TUSD_INTERNAL_URL, value: {{ printf "http://%s-tusd:%v/files/" (include "slidestream.fullname" $root) $root.Values.tusd.port | quote }}}
            {{- end }}
            {{- end }}
            {{- if and (eq $name "catalog") $root.Values.services.upload.enabled }}
            # Partner tokens belong to the upload API: the catalog resolves them there.
            - {name: UPLOAD_API_URL, value: {{ printf "http://%s-upload:%v" (include "slidestream.fullname" $root) $root.Values.services.upload.port | quote }}}
            {{- end }}
            {{- if and (eq $name "catalog") $root.Values.services.inference.enabled }}
            - {name: INFERENCE_API_URL, value: {{ printf "http://%s-inference:%v" (include "slidestream.fullname" $root) $root.Values.services.inference.port | quote }}}
            {{- end }}
            {{- if $svc.embedToken }}
            - {name: EMBED_TOKEN_FILE, value: /run/secrets/slidestream-embed-token/embed_token}
            {{- end }}
            {{- range $key, $value := $svc.env }}
            {{- if $value }}
            - {name: {{ $key }}, value: {{ $value | quote }}}
            {{- end }}
            {{- end }}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 10
            failureThreshold: 3
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 20
            failureThreshold: 3
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 5
            failureThreshold: 60
          resources: {{- toYaml $svc.resources | nindent 12 }}
          volumeMounts:
            - {name: secrets, mountPath: /run/secrets/slidestream, readOnly: true}
            - {name: scratch, mountPath: /scratch}
            - {name: data, mountPath: /var/lib/slidestream}
            - {name: tmp, mountPath: /tmp}
            {{- if eq $name "deid" }}
            - {name: pseudonym-key, mountPath: /run/secrets/slidestream-pseudonym, readOnly: true}
            - {name: vault-key, mountPath: /run/secrets/slidestream-vault, readOnly: true}
            {{- end }}
            {{- if $svc.apiTokens }}
            - {name: api-tokens, mountPath: /run/secrets/slidestream-api-tokens, readOnly: true}
            {{- end }}
            {{- if $svc.embedToken }}
            - {name: embed-token, mountPath: /run/secrets/slidestream-embed-token, readOnly: true}
            {{- end }}
      volumes:
        - name: secrets
          projected:
            sources:
              - secret:
                  name: {{ $root.Values.objectStoreSecret }}
                  items:
                    - {key: s3_access_key, path: s3_access_key}
                    - {key: s3_secret_key, path: s3_secret_key}
              {{- with $database }}
              {{- $source := splitList " " . }}
              - secret:
                  name: {{ index $source 0 }}
                  items:
                    - {key: {{ index $source 1 }}, path: database_url}
              {{- end }}
              {{- if $svc.tusdHooks }}
              - secret:
                  name: {{ include "slidestream.tusdHooksSecret" $root }}
                  items:
                    - {key: tusd_hooks_secret, path: tusd_hooks_secret}
                    - {key: tusd_internal_token, path: tusd_internal_token}
              {{- end }}
        - name: scratch
          emptyDir: {sizeLimit: {{ $svc.scratch.sizeLimit }}}
        - name: data
          {{- if $database }}
          emptyDir: {}
          {{- else }}
          persistentVolumeClaim: {claimName: {{ $dataClaim }}}
          {{- end }}
        - name: tmp
          emptyDir: {sizeLimit: 256Mi}
        {{- if eq $name "deid" }}
        - name: pseudonym-key
          secret:
            secretName: {{ $svc.pseudonymKey.existingSecret }}
            defaultMode: 0400
        - name: vault-key
          secret:
            secretName: {{ $svc.vaultKey.existingSecret }}
            items:
              {{- range (concat (list $svc.vaultKey.id) ($svc.vaultKey.retiredIds | default list)) }}
              - {key: {{ printf "vault_key_%v" . }}, path: {{ printf "vault_key_%v" . }}}
              {{- end }}
            defaultMode: 0400
        {{- end }}
        {{- with $svc.apiTokens }}
        - name: api-tokens
          secret:
            secretName: {{ .existingSecret }}
            items:
              - {key: api_tokens.json, path: api_tokens.json}
            defaultMode: 0400
        {{- end }}
        {{- with $svc.embedToken }}
        - name: embed-token
          secret:
            secretName: {{ .existingSecret }}
            items:
              - {key: embed_token, path: embed_token}
            defaultMode: 0400
        {{- end }}
{{- if not $database }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ $dataClaim }}
  labels:
    {{- include "slidestream.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ $name }}
  annotations:
    helm.sh/resource-policy: keep  # the service's SQLite file outlives an uninstall
spec:
  accessModes: [ReadWriteOnce]
  {{- with $root.Values.persistence.storageClass }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ dig "persistence" "size" "" $svc | default $root.Values.persistence.size }}
{{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $full }}
  labels:
    {{- include "slidestream.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ $name }}
spec:
  selector:
    {{- include "slidestream.selector" (dict "root" $root "name" $name) | nindent 4 }}
  ports:
    - {name: http, port: {{ $svc.port }}, targetPort: http}
    {{- with $svc.hooksPort }}
    - {name: hooks, port: {{ . }}, targetPort: hooks}
    {{- end }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $full }}
  labels:
    {{- include "slidestream.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ $name }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "slidestream.selector" (dict "root" $root "name" $name) | nindent 6 }}
{{- if and $root.Values.keda.enabled $svc.consumes }}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $full }}
  labels:
    {{- include "slidestream.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ $name }}
spec:
  scaleTargetRef:
    name: {{ $full }}
  minReplicaCount: 1
  maxReplicaCount: {{ min $root.Values.keda.maxReplicas $root.Values.kafka.partitions }}
  pollingInterval: {{ $root.Values.keda.pollingInterval }}
  cooldownPeriod: {{ $root.Values.keda.cooldownPeriod }}
  triggers:
    {{- range $svc.consumes }}
    - type: kafka
      metadata:
        bootstrapServers: {{ include "slidestream.kafkaBootstrap" $root | quote }}
        consumerGroup: {{ $name | quote }}
        topic: {{ . | quote }}
        lagThreshold: {{ $root.Values.keda.lagThreshold | quote }}
        offsetResetPolicy: earliest
    {{- end }}
{{- end }}
{{- end -}}
