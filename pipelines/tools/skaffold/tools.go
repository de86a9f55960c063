//go:build tools

// Package tools pins the skaffold CLI for pipelines/tools.sh.
package tools

import (
	_ "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
)
