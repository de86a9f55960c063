"""What a deployment will change, before it changes anything (docs/deploy-plans.md).

:func:`plan_objects` compares objects as they are with the objects as they will be. The deployer
gives it both from the API server (:mod:`deployer.plan.live`: the live objects, and a server-side
dry run of the new ones), so defaults and quantities are already as the server stores them;
:func:`plan_release` gives it two manifests (``helm get manifest`` and ``helm template``) where no
cluster can be asked. Only a change of a workload's ``.spec.template`` rolls its pods (lists
compared in order, as the Deployment controller does), so per workload (Deployment, StatefulSet,
DaemonSet) it says:

- ``install``: the workload is new; ``delete``: it goes away;
- ``rollout``: the pod template changed; ``fields`` names what (image, env, annotations, ...);
- ``scale-only``: only ``.spec.replicas`` changed;
- ``workload-only``: the workload changed outside its pod template (strategy, deadlines, its own
  labels): nothing rolls;
- ``config-only``: the workload is unchanged but a ConfigMap or Secret its pods read changed,
  so running pods keep the old configuration (also a warning);
- ``service-only``: the workload is unchanged, other resources of the release changed;
- ``no-op``: nothing in the release changed.

Normalisation before comparing parsed YAML (never text): hooks are left out (``helm get
manifest`` has none, ``helm template`` renders them); fields that are empty (``{}``, ``[]``,
null) count as absent, as the API server stores them; ``status``, ``metadata.creationTimestamp``
and the ``helm.sh/chart`` label of top-level objects are ignored (that label only names the chart
version, and changing it rolls nothing; inside a pod template every label counts); resource
quantities compare by value (``1`` = ``1000m``, ``1Gi`` = ``1024Mi``). Values of Secrets never
appear in a plan, only their key names.

The package's modules, pure (no helm, Kubernetes or NATS) but for :mod:`deployer.plan.live`:
:mod:`~deployer.plan.model` (the plan), :mod:`~deployer.plan.objects` (parsing, normalising),
:mod:`~deployer.plan.quantities`, :mod:`~deployer.plan.diff`, :mod:`~deployer.plan.workloads`
(what happens per workload and resource), :mod:`~deployer.plan.notices` (warnings and notices),
:mod:`~deployer.plan.summary` and :mod:`~deployer.plan.compare` (the plan of a release).
"""

from deploy_contract.changes import FieldChange
from deployer.plan.compare import plan_objects, plan_release
from deployer.plan.diff import VALUE_LIMIT, field_changes
from deployer.plan.model import (
    Attention,
    Notice,
    Plan,
    ResourceChange,
    WorkloadChange,
    WorkloadPlan,
)
from deployer.plan.notices import REPLICAS_WARNING_FACTOR
from deployer.plan.objects import REVISION_ANNOTATION, manifest_objects, normalise, object_key
from deployer.plan.quantities import parse_quantity
from deployer.plan.workloads import CONFIG_KINDS, WORKLOAD_KINDS

__all__ = [
    "CONFIG_KINDS",
    "REPLICAS_WARNING_FACTOR",
    "REVISION_ANNOTATION",
    "VALUE_LIMIT",
    "WORKLOAD_KINDS",
    "Attention",
    "FieldChange",
    "Notice",
    "Plan",
    "ResourceChange",
    "WorkloadChange",
    "WorkloadPlan",
    "field_changes",
    "manifest_objects",
    "normalise",
    "object_key",
    "parse_quantity",
    "plan_objects",
    "plan_release",
]
