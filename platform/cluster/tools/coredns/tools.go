//go:build tools

// Package tools pins CoreDNS (the cluster DNS of the real node) for
// platform/cluster/build-tools.sh.
package tools

import (
	_ "github.com/coredns/coredns"
)
