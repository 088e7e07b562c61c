// tarwrite writes a tar with Go's archive/tar exactly as dockerd 20.10's
// Diff does (pkg/archive: Format PAX, whole-second times, xattrs in
// Header.Xattrs; whiteouts as a bare Header), from a JSON list of entries
// on stdin, to stdout. dmthin's Diff writer must produce the same bytes.
// Standard library only; built with Debian 12's Go 1.19 (dockerd 20.10's).
package main

import (
	"archive/tar"
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Byte strings are base64, so names that are not UTF-8 cross intact.
type entry struct {
	Name     string            `json:"name"`
	Typeflag string            `json:"typeflag"`
	Mode     int64             `json:"mode"`
	Uid      int               `json:"uid"`
	Gid      int               `json:"gid"`
	Mtime    int64             `json:"mtime"`
	Linkname string            `json:"linkname"`
	Devmajor int64             `json:"devmajor"`
	Devminor int64             `json:"devminor"`
	Xattrs   map[string]string `json:"xattrs"`
	Body     string            `json:"body"`
	Whiteout bool              `json:"whiteout"`
}

func bytesOf(b64 string) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		fail(err)
	}
	return string(b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tarwrite:", err)
	os.Exit(1)
}

func main() {
	var entries []entry
	if err := json.NewDecoder(os.Stdin).Decode(&entries); err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	tw := tar.NewWriter(out)
	for _, e := range entries {
		body := bytesOf(e.Body)
		var hdr *tar.Header
		if e.Whiteout {
			// changes.go ExportChanges: name and times only.
			now := time.Unix(e.Mtime, 0)
			hdr = &tar.Header{Name: bytesOf(e.Name), ModTime: now, AccessTime: now, ChangeTime: now}
		} else {
			hdr = &tar.Header{
				Format:   tar.FormatPAX,
				Name:     bytesOf(e.Name),
				Typeflag: e.Typeflag[0],
				Mode:     e.Mode,
				Uid:      e.Uid,
				Gid:      e.Gid,
				Size:     int64(len(body)),
				ModTime:  time.Unix(e.Mtime, 0),
				Linkname: bytesOf(e.Linkname),
				Devmajor: e.Devmajor,
				Devminor: e.Devminor,
			}
			if len(e.Xattrs) > 0 {
				hdr.Xattrs = map[string]string{}
				for k, v := range e.Xattrs {
					hdr.Xattrs[bytesOf(k)] = bytesOf(v)
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			fail(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			fail(err)
		}
	}
	if err := tw.Close(); err != nil {
		fail(err)
	}
	if err := out.Flush(); err != nil {
		fail(err)
	}
}
