// Package dmthingraphtest runs moby's graphtest conformance tests and
// benchmarks (daemon/graphdriver/graphtest, as Debian ships moby 20.10.24)
// on dmthin through moby's own GraphDriver plugin proxy, and the same
// benchmarks on Docker's in-tree devicemapper driver.
//
// It registers a graph driver named "dmthin" whose init hands moby's
// graphdriver a plugin getter for dmthin's socket: graphdriver then takes
// the path dockerd takes for a legacy plugin (lookupPlugin,
// newPluginDriver, graphDriverProxy), so every call crosses the same
// client code and JSON as under dockerd.
package dmthingraphtest

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/docker/docker/daemon/graphdriver"
	"github.com/docker/docker/pkg/idtools"
	"github.com/docker/docker/pkg/plugingetter"
	"github.com/docker/docker/pkg/plugins"
	"github.com/docker/go-connections/tlsconfig"
	"github.com/sirupsen/logrus"
)

// DriverName is the name the tests give graphtest for dmthin.
const DriverName = "dmthin"

// pluginName is the plugin as graphdriver looks it up; it must differ
// from DriverName, or graphdriver would find this init again.
const pluginName = "dmthin-plugin"

// SocketEnv names dmthin's socket; dockerd's legacy plugin path by default.
const SocketEnv = "DMTHIN_GRAPHTEST_SOCKET"

func init() {
	if err := graphdriver.Register(DriverName, initProxy); err != nil {
		panic(err)
	}
	logrus.AddHook(&loggedError)
}

func socketPath() string {
	if s := os.Getenv(SocketEnv); s != "" {
		return s
	}
	return "/run/docker/plugins/dmthin.sock"
}

// initProxy activates the plugin as dockerd does for a legacy plugin
// (Plugin.Activate, which must list GraphDriver), then lets graphdriver
// make its proxy, which sends GraphDriver.Init and Capabilities.
func initProxy(home string, options []string, uidMaps, gidMaps []idtools.IDMap) (graphdriver.Driver, error) {
	socket := socketPath()
	client, err := plugins.NewClient("unix://"+socket, &tlsconfig.Options{InsecureSkipVerify: true})
	if err != nil {
		return nil, fmt.Errorf("dmthin at %s: %w", socket, err)
	}
	var manifest plugins.Manifest
	if err := client.Call("Plugin.Activate", nil, &manifest); err != nil {
		return nil, fmt.Errorf("dmthin at %s: Plugin.Activate: %w", socket, err)
	}
	if !implements(manifest, "GraphDriver") {
		return nil, fmt.Errorf("dmthin at %s implements %v, not GraphDriver", socket, manifest.Implements)
	}
	getter := socketGetter{plugin: socketPlugin{name: pluginName, client: client}}
	// graphdriver.GetDriver logs why a plugin failed and returns only
	// ErrNotSupported, which graphtest turns into a skip: keep the reason.
	loggedError.err = nil
	driver, err := graphdriver.GetDriver(pluginName, getter, graphdriver.Options{
		Root:                filepath.Dir(home),
		DriverOptions:       options,
		UIDMaps:             uidMaps,
		GIDMaps:             gidMaps,
		ExperimentalEnabled: true,
	})
	if err != nil {
		if loggedError.err != nil {
			return nil, fmt.Errorf("dmthin through moby's plugin proxy: %w", loggedError.err)
		}
		return nil, fmt.Errorf("dmthin through moby's plugin proxy: %v", err)
	}
	return driver, nil
}

func implements(m plugins.Manifest, kind string) bool {
	for _, k := range m.Implements {
		if k == kind {
			return true
		}
	}
	return false
}

// socketPlugin is a legacy (v1) plugin whose client is already connected.
type socketPlugin struct {
	name   string
	client *plugins.Client
}

func (p socketPlugin) Name() string               { return p.name }
func (p socketPlugin) ScopedPath(s string) string { return s }
func (p socketPlugin) IsV1() bool                 { return true }
func (p socketPlugin) Client() *plugins.Client    { return p.client }

// socketGetter answers graphdriver's one lookup with the socket's plugin.
type socketGetter struct {
	plugin socketPlugin
}

func (g socketGetter) Get(name, capability string, mode int) (plugingetter.CompatPlugin, error) {
	if name != g.plugin.name || capability != "GraphDriver" {
		return nil, fmt.Errorf("no %s plugin named %s", capability, name)
	}
	return g.plugin, nil
}

func (g socketGetter) GetAllByCap(string) ([]plugingetter.CompatPlugin, error) {
	return []plugingetter.CompatPlugin{g.plugin}, nil
}

func (g socketGetter) GetAllManagedPluginsByCap(string) []plugingetter.CompatPlugin { return nil }

func (g socketGetter) Handle(string, func(string, *plugins.Client)) {}

// loggedError keeps the error of the last error-level log entry.
var loggedError lastLoggedError

type lastLoggedError struct {
	err error
}

func (h *lastLoggedError) Levels() []logrus.Level { return []logrus.Level{logrus.ErrorLevel} }

func (h *lastLoggedError) Fire(e *logrus.Entry) error {
	if err, ok := e.Data[logrus.ErrorKey].(error); ok {
		h.err = err
	}
	return nil
}
