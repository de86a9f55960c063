//go:build tools

// Package tools pins containerd (the real node's CRI runtime), its runc shim and ctr for
// platform/cluster/build-tools.sh.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
