// Package v2 stands in for moby's plugin/v2, which Debian's
// golang-github-docker-docker-dev leaves out although graphdriver's
// plugin.go imports it. plugin.go only asks whether a plugin is a managed
// one (*v2.Plugin) to read its propagated mount; the graphtest wrapper
// serves dmthin as a legacy (v1) plugin, so nothing here is ever reached.
package v2

import (
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/pkg/plugins"
)

// Plugin has the fields and methods graphdriver's plugin.go uses.
type Plugin struct {
	PluginObj types.Plugin
}

// Name is the plugin's name.
func (p *Plugin) Name() string { return p.PluginObj.Name }

// ScopedPath is the path unchanged: no managed plugin has a rootfs here.
func (p *Plugin) ScopedPath(s string) string { return s }

// IsV1 is false: this type stands for managed plugins.
func (p *Plugin) IsV1() bool { return false }

// Client is nil: managed plugins are never made here.
func (p *Plugin) Client() *plugins.Client { return nil }
