package dmthingraphtest

import (
	"os"
	"strings"
	"testing"

	// Registers Docker's in-tree "devicemapper" driver, which the
	// benchmarks run on when DMTHIN_GRAPHTEST_DRIVER says so.
	_ "github.com/docker/docker/daemon/graphdriver/devmapper"
	"github.com/docker/docker/daemon/graphdriver/graphtest"
	"github.com/docker/docker/pkg/reexec"
)

func init() {
	// The in-tree driver's archive code re-executes the test binary for
	// chrooted extraction, as moby's own driver tests allow.
	reexec.Init()
}

// driverName is the driver under test: dmthin (through the plugin proxy)
// unless DMTHIN_GRAPHTEST_DRIVER names another registered one.
func driverName() string {
	if d := os.Getenv("DMTHIN_GRAPHTEST_DRIVER"); d != "" {
		return d
	}
	return DriverName
}

// storageOptions are DMTHIN_GRAPHTEST_OPTS, space-separated, given to the
// driver's Init as dockerd gives --storage-opt.
func storageOptions() []string {
	return strings.Fields(os.Getenv("DMTHIN_GRAPHTEST_OPTS"))
}

// The conformance tests moby's drivers run (overlay2's list, which has
// them all); each makes and releases its own driver, so each can run alone.

func TestCreateEmpty(t *testing.T) {
	graphtest.DriverTestCreateEmpty(t, driverName(), storageOptions()...)
}

func TestCreateBase(t *testing.T) {
	graphtest.DriverTestCreateBase(t, driverName(), storageOptions()...)
}

func TestCreateSnap(t *testing.T) {
	graphtest.DriverTestCreateSnap(t, driverName(), storageOptions()...)
}

// 20 layers, not overlay2's 128: each layer costs dmthin a thin snapshot,
// a mount and a few files, slow under the VM's emulation.
func TestDeepLayerRead(t *testing.T) {
	graphtest.DriverTestDeepLayerRead(t, 20, driverName(), storageOptions()...)
}

func TestDiffApply10Files(t *testing.T) {
	graphtest.DriverTestDiffApply(t, 10, driverName(), storageOptions()...)
}

func TestChanges(t *testing.T) {
	graphtest.DriverTestChanges(t, driverName(), storageOptions()...)
}

// The benchmarks of moby's overlay2 tests, plus DiffApply with 1,000 files.

func BenchmarkExists(b *testing.B) {
	graphtest.DriverBenchExists(b, driverName(), storageOptions()...)
}

func BenchmarkGetEmpty(b *testing.B) {
	graphtest.DriverBenchGetEmpty(b, driverName(), storageOptions()...)
}

func BenchmarkDiffBase(b *testing.B) {
	graphtest.DriverBenchDiffBase(b, driverName(), storageOptions()...)
}

func BenchmarkDiffSmallUpper(b *testing.B) {
	graphtest.DriverBenchDiffN(b, 10, 10, driverName(), storageOptions()...)
}

func BenchmarkDiff10KFileUpper(b *testing.B) {
	graphtest.DriverBenchDiffN(b, 10, 10000, driverName(), storageOptions()...)
}

func BenchmarkDiff10KFilesBottom(b *testing.B) {
	graphtest.DriverBenchDiffN(b, 10000, 10, driverName(), storageOptions()...)
}

func BenchmarkDiffApply100(b *testing.B) {
	graphtest.DriverBenchDiffApplyN(b, 100, driverName(), storageOptions()...)
}

func BenchmarkDiffApply1000(b *testing.B) {
	graphtest.DriverBenchDiffApplyN(b, 1000, driverName(), storageOptions()...)
}

func BenchmarkDiff20Layers(b *testing.B) {
	graphtest.DriverBenchDeepLayerDiff(b, 20, driverName(), storageOptions()...)
}

func BenchmarkRead20Layers(b *testing.B) {
	graphtest.DriverBenchDeepLayerRead(b, 20, driverName(), storageOptions()...)
}
