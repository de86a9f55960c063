"""The GitOps way of deploying: the deployer writes an environment's desired state to a git
repository, one commit per deployment, and Flux applies it.

- :mod:`.config`: an environment's repository settings;
- :mod:`.layout`: the files of the desired state (pure);
- :mod:`.charts`: the chart copies the repository carries, named by their content;
- :mod:`.git`: the one writer of a repository (lock, fetch, rebase, push);
- :mod:`.flux`: Flux's objects in the cluster (ask for a reconcile, read their status);
- :mod:`.verdict`: what a HelmRelease's status says about one generation (pure);
- :mod:`.apply`: the apply step and the releases of a gitops environment.
"""
