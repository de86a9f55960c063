//go:build tools

// Package tools pins the Flux controllers (source-controller, kustomize-controller,
// helm-controller) for platform/cluster/build-tools.sh.
package tools

import (
	_ "github.com/fluxcd/helm-controller"
	_ "github.com/fluxcd/kustomize-controller"
	_ "github.com/fluxcd/source-controller"
)
