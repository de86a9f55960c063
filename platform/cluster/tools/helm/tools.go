//go:build tools

// Package tools pins the helm CLI for platform/cluster/build-tools.sh.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
