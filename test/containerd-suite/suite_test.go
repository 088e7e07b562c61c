// containerd's own snapshotter test suite (snapshots/testsuite) against
// dmthin's snapshots service, through containerd's proxy client: the same
// client containerd uses for [proxy_plugins]. Built from Debian's
// golang-github-containerd-containerd-dev in GOPATH mode by
// scripts/containerd-suite, run as root in the VM with
// DMTHIN_SUITE_SOCKET naming dmthin's snapshotter socket.
package dmthinsuite

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/pkg/testutil"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

// Each call of the factory gets a store of its own: dmthin keeps one per
// `snapshotter` name, and the suite's tests run in parallel with the same keys.
var instances atomic.Int64

func TestDmthin(t *testing.T) {
	testutil.RequiresRoot(t)
	socket := os.Getenv("DMTHIN_SUITE_SOCKET")
	if socket == "" {
		t.Fatal("DMTHIN_SUITE_SOCKET must name dmthin's snapshotter socket")
	}
	testsuite.SnapshotterSuite(t, "dmthin", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		conn, err := grpc.Dial("unix://"+socket, grpc.WithInsecure())
		if err != nil {
			return nil, nil, err
		}
		name := fmt.Sprintf("suite-%d-%d", os.Getpid(), instances.Add(1))
		sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), name)
		cleanup := func() error {
			defer conn.Close()
			return removeAll(ctx, sn)
		}
		return sn, cleanup, nil
	})
}

// removeAll removes every snapshot of the store, children before parents.
func removeAll(ctx context.Context, sn snapshots.Snapshotter) error {
	for round := 0; ; round++ {
		var infos []snapshots.Info
		if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			infos = append(infos, info)
			return nil
		}); err != nil {
			return err
		}
		if len(infos) == 0 {
			return nil
		}
		if round > 200 {
			return fmt.Errorf("%d snapshots left after %d rounds of removal", len(infos), round)
		}
		parents := map[string]bool{}
		for _, info := range infos {
			parents[info.Parent] = true
		}
		for _, info := range infos {
			if !parents[info.Name] {
				if err := sn.Remove(ctx, info.Name); err != nil {
					return err
				}
			}
		}
	}
}
