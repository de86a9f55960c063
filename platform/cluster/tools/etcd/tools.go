//go:build tools

// Package tools pins the etcd server for platform/cluster/build-tools.sh.
// `go install go.etcd.io/etcd/server/v3@...` is refused because that module
// has replace directives, so it is built from this module instead.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
