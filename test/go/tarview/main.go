// tarview lists a tar as Go's archive/tar reads it, as the TarView JSON of
// dmthin's TAR-CONTRACT.md: one document per tar. With -batch it reads tar
// paths from stdin, one per line, and prints one JSON line per tar.
// Standard library only; built with Debian 12's Go 1.19 (dockerd 20.10's).
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Must equal LISTER_BODY_CAP in test/support/tar-view.ts.
const bodyCap = 64 * 1024 * 1024

type entry struct {
	Name     string            `json:"name"`
	Linkname string            `json:"linkname"`
	Typeflag byte              `json:"typeflag"`
	Size     string            `json:"size"`
	Mode     string            `json:"mode"`
	Uid      string            `json:"uid"`
	Gid      string            `json:"gid"`
	Devmajor string            `json:"devmajor"`
	Devminor string            `json:"devminor"`
	Uname    string            `json:"uname"`
	Gname    string            `json:"gname"`
	Mtime    *string           `json:"mtime"`
	Atime    *string           `json:"atime"`
	Ctime    *string           `json:"ctime"`
	Pax      map[string]string `json:"pax"`
	Sha256   string            `json:"sha256"`
	BodySize int64             `json:"bodySize"`
}

type view struct {
	Entries []entry `json:"entries"`
	Error   *string `json:"error"`
}

// binary makes each byte one code point, as the TypeScript side's latin1 strings.
func binary(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

func timeText(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
	return &s
}

func category(err error) string {
	switch {
	case errors.Is(err, tar.ErrHeader):
		return "header"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected-eof"
	case errors.Is(err, tar.ErrFieldTooLong):
		return "field-too-long"
	case err.Error() == "archive/tar: sparse file references non-existent data":
		return "missing-data"
	case err.Error() == "archive/tar: sparse file contains unreferenced data":
		return "unreferenced-data"
	}
	return "other: " + err.Error()
}

func list(r io.Reader) view {
	v := view{Entries: []entry{}}
	fail := func(s string) view { v.Error = &s; return v }
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return v
		}
		if err != nil {
			return fail(category(err))
		}
		sum := sha256.New()
		n, err := io.CopyN(sum, tr, bodyCap+1)
		if err != nil && err != io.EOF {
			return fail(category(err))
		}
		if n > bodyCap {
			return fail("other: body larger than the lister reads")
		}
		pax := map[string]string{}
		for k, val := range h.PAXRecords {
			pax[binary(k)] = base64.StdEncoding.EncodeToString([]byte(val))
		}
		v.Entries = append(v.Entries, entry{
			Name: binary(h.Name), Linkname: binary(h.Linkname), Typeflag: h.Typeflag,
			Size: strconv.FormatInt(h.Size, 10), Mode: strconv.FormatInt(h.Mode, 10),
			Uid: strconv.Itoa(h.Uid), Gid: strconv.Itoa(h.Gid),
			Devmajor: strconv.FormatInt(h.Devmajor, 10), Devminor: strconv.FormatInt(h.Devminor, 10),
			Uname: binary(h.Uname), Gname: binary(h.Gname),
			Mtime: timeText(h.ModTime), Atime: timeText(h.AccessTime), Ctime: timeText(h.ChangeTime),
			Pax: pax, Sha256: hex.EncodeToString(sum.Sum(nil)), BodySize: n,
		})
	}
}

func listFile(path string) view {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tarview:", err)
		os.Exit(2)
	}
	defer f.Close()
	// A plain io.Reader, as dockerd's pipe: no Seek shortcuts in discard.
	return list(struct{ io.Reader }{bufio.NewReader(f)})
}

func main() {
	out := json.NewEncoder(os.Stdout)
	if len(os.Args) == 2 && os.Args[1] == "-batch" {
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(make([]byte, 1<<16), 1<<20)
		w := bufio.NewWriter(os.Stdout)
		out = json.NewEncoder(w)
		for in.Scan() {
			if err := out.Encode(listFile(in.Text())); err != nil {
				os.Exit(2)
			}
			w.Flush()
		}
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tarview FILE.tar | tarview -batch < paths")
		os.Exit(2)
	}
	if err := out.Encode(listFile(os.Args[1])); err != nil {
		os.Exit(2)
	}
}
