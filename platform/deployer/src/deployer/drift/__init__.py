"""Drift: fields of a release's live objects that no longer say what its manifest says.

Observe (:mod:`.check`): each object of the release's recorded manifest is read live, and dry-run
applied as helm applies it (server-side, field manager ``helm``, conflicts forced): the answer is
the object with every field of the manifest restored, and nothing else touched. Compare
(:mod:`.compare`, pure): the fields where the two differ, minus the ignored JSON pointers
(``/spec/replicas`` when an HPA owns the count), are the drift; a deleted object is drift too.
Per service mode (:mod:`.config`): ``off`` (not checked), ``warn`` (reported, left alone) or
``correct``: the drifted objects are applied again by an act queued in the release's lane
(:mod:`.watch`), so a release has one writer.
"""
