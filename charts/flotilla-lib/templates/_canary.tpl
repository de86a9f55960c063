{{- /*
The replica-ratio canary (strategy.type: canary; charts/README.md "Canary"). The deployer drives
it step by step with helm upgrade, setting canary.*: while canary.enabled, the stable Deployment
(its name and selector unchanged) runs canary.stableReplicas pods, and a second Deployment,
<fullname>-canary, runs canary.replicas pods of the same pod template on canary.image.

No mesh: the traffic split is the replica ratio. So the one Service, the PodDisruptionBudget and
the NetworkPolicy select the pods of both Deployments by the shared selector labels, on purpose.

Only the canary is marked: flotilla.dev/track: canary on its Deployment, in its selector and on
its pod template. The stable pods carry no track label, since adding one to their template would
roll every existing release once, and their selector may not change (it is immutable on an
existing Deployment). Prometheus gets the label through the ServiceMonitor's podTargetLabels and
reads "no label" as stable.

The two selectors overlap (the stable one matches the canary's pods as well), and that is safe:
the Deployment and ReplicaSet controllers adopt only ReplicaSets and pods that have no controller
ownerReference, and each of these has one (its own Deployment, its own ReplicaSet); the
ReplicaSets also select by pod-template-hash, which differs between the two templates (image and
track label). Neither Deployment counts, scales or deletes the other's pods.
*/ -}}

{{- /* Usage: include "flotilla-lib.canaryTrackLabel" . -> the label key that marks the canary's pods (value "canary"); the stable pods carry none. */ -}}
{{- define "flotilla-lib.canaryTrackLabel" -}}
flotilla.dev/track
{{- end -}}

{{- /* Usage: include "flotilla-lib.canaryEnabled" . -> "true" while the deployer runs a canary (canary.enabled); empty in a chart without canary values (the deployer's own). */ -}}
{{- define "flotilla-lib.canaryEnabled" -}}
{{- if and (hasKey .Values "canary") .Values.canary.enabled -}}true{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.canaryStrategy" . -> "true" when the release takes new images by canary: strategy.type canary, or a canary running. */ -}}
{{- define "flotilla-lib.canaryStrategy" -}}
{{- if include "flotilla-lib.canaryEnabled" . -}}
true
{{- else if and (hasKey .Values "strategy") (eq .Values.strategy.type "canary") -}}
true
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.canaryName" . -> "<fullname>-canary", the canary Deployment's name (fullname shortened so that it stays within 63 characters). */ -}}
{{- define "flotilla-lib.canaryName" -}}
{{- printf "%s-canary" (include "flotilla-lib.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.checkCanary" . -> nothing; fails, saying what to change, when a canary could not work: canary.enabled without strategy.type canary, a canary on SQLite, or beside an HPA. */ -}}
{{- define "flotilla-lib.checkCanary" -}}
{{- if include "flotilla-lib.canaryStrategy" . -}}
{{- $v := .Values -}}
{{- $running := include "flotilla-lib.canaryEnabled" . -}}
{{- $what := ternary "canary.enabled" "strategy.type: canary" (eq $running "true") -}}
{{- if and $running (ne $v.strategy.type "canary") -}}
{{- fail (printf "canary.enabled is true but strategy.type is %s: the deployer sets canary.* while it runs the canary of a strategy.type: canary service, never by hand. Leave canary out of your values (canary.enabled: false), or set strategy.type: canary and deploy through the deployer." $v.strategy.type) -}}
{{- end -}}
{{- if include "flotilla-lib.usesSqlite" . -}}
{{- fail (printf "%s needs PostgreSQL: database.existingSecret is empty, so the service runs on SQLite, and the canary's pods and the stable ones would be two processes sharing one SQLite file. Name a Secret holding DATABASE_URL in database.existingSecret (PostgreSQL, see charts/README.md), or use strategy.type: rolling." $what) -}}
{{- end -}}
{{- if $v.autoscaling.enabled -}}
{{- fail (printf "%s with autoscaling.enabled: the canary's split is a replica ratio; an HPA would fight it: set autoscaling.enabled=false for a canary service, or use strategy rolling (strategy.type: rolling)." $what) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Usage: include "flotilla-lib.canaryDeployment" . -> while canary.enabled, the canary Deployment "<fullname>-canary": the stable pod template on canary.image, canary.replicas pods, labelled (and selected by) flotilla.dev/track: canary; nothing otherwise. */ -}}
{{- define "flotilla-lib.canaryDeployment" -}}
{{- if include "flotilla-lib.canaryEnabled" . -}}
{{- include "flotilla-lib.checkCanary" . -}}
{{- $c := .Values.canary -}}
{{- $tag := required "canary.image.tag is required while canary.enabled: the deployer sets the new image's immutable tag (such as 1.4.3-b9e4e32)" $c.image.tag -}}
{{- /* The same values with the canary's image (its repository too, when CI pushed it elsewhere), so every helper (flotilla-lib.image, the version
labels) renders the canary's. Both keys are set one by one: an empty canary digest must replace
the stable image's digest (else the canary would run the old image), which set says plainly and
a merge leaves to how the sprig/mergo version treats empty values. */ -}}
{{- $values := deepCopy .Values -}}
{{- $_ := set $values.image "repository" ($c.image.repository | default .Values.image.repository) -}}
{{- $_ := set $values.image "tag" $tag -}}
{{- $_ := set $values.image "digest" ($c.image.digest | default "") -}}
{{- $context := dict "Values" $values "Release" .Release "Chart" .Chart "Capabilities" .Capabilities "Template" .Template "Files" .Files -}}
{{- include "flotilla-lib.deploymentOf" (dict "context" $context "track" "canary") -}}
{{- end -}}
{{- end -}}
