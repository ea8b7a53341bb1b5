// Command aptgen makes synthetic apt upstreams for bench/apt.sh and serves
// them: "aptgen gen" writes N small but valid .deb files (ar archives with
// control.tar.gz and data.tar.gz) and the matching Packages index, much
// faster than dpkg-deb could; "aptgen serve" is a static file server.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: aptgen gen|serve [flags]")
	}
	switch os.Args[1] {
	case "gen":
		gen(os.Args[2:])
	case "serve":
		serve(os.Args[2:])
	default:
		log.Fatalf("aptgen: unknown command %q", os.Args[1])
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", ".", "directory to serve")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	fs.Parse(args)
	log.Fatal(http.ListenAndServe(*addr, http.FileServer(http.Dir(*dir))))
}

type genOptions struct {
	dir     string
	n       int
	payload int
	same    bool
	version string
}

func gen(args []string) {
	var o genOptions
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	fs.StringVar(&o.dir, "dir", "", "repository root to write")
	fs.IntVar(&o.n, "n", 5000, "number of packages")
	fs.IntVar(&o.payload, "payload", 4096, "random bytes in each package")
	fs.BoolVar(&o.same, "same", false, "one .deb content for every package, hard-linked (for index-scale tests)")
	fs.StringVar(&o.version, "version", "1.0-1", "version of every package")
	fs.Parse(args)
	if o.dir == "" {
		log.Fatal("aptgen gen: -dir is required")
	}
	if err := write(o); err != nil {
		log.Fatal(err)
	}
}

// write makes the pool and dists/bench/main/binary-amd64/Packages.
func write(o genOptions) error {
	idx := filepath.Join(o.dir, "dists", "bench", "main", "binary-amd64")
	if err := os.MkdirAll(idx, 0o755); err != nil {
		return err
	}
	var packages bytes.Buffer
	var shared []byte
	var sharedPath string
	for i := range o.n {
		p := pkg{name: fmt.Sprintf("bench-pkg-%05d", i), version: o.version, i: i}
		if i > 0 {
			p.depends = fmt.Sprintf("bench-pkg-%05d (>= 1.0), libc6 (>= 2.36) | libc6.1", i/2)
		}
		file := filepath.Join("pool", "main", "b", p.name, p.name+"_"+o.version+"_amd64.deb")
		full := filepath.Join(o.dir, file)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		data := shared
		if data == nil || !o.same {
			data = p.deb(o.payload)
		}
		var err error
		if o.same && sharedPath != "" {
			err = os.Link(sharedPath, full)
		} else {
			err = os.WriteFile(full, data, 0o644)
			shared, sharedPath = data, full
		}
		if err != nil {
			return err
		}
		p.stanza(&packages, file, data)
	}
	return os.WriteFile(filepath.Join(idx, "Packages"), packages.Bytes(), 0o644)
}

type pkg struct {
	name, version, depends string
	i                      int
}

func (p pkg) control() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: Bench Maintainer <bench@example.invalid>\n", p.name, p.version)
	fmt.Fprintf(&b, "Installed-Size: %d\n", 4+p.i%100)
	if p.depends != "" {
		fmt.Fprintf(&b, "Depends: %s\n", p.depends)
	}
	fmt.Fprintf(&b, "Section: misc\nPriority: optional\nHomepage: https://example.invalid/%s\n", p.name)
	fmt.Fprintf(&b, "Description: synthetic benchmark package %d\n This package exists to measure mirroring. Its long description is\n about as long as a real package's, so that the index has a realistic\n size per stanza.\n", p.i)
	return b.String()
}

// stanza writes the package's Packages entry.
func (p pkg) stanza(w *bytes.Buffer, file string, deb []byte) {
	sha := sha256.Sum256(deb)
	md := md5.Sum(deb)
	w.WriteString(p.control())
	fmt.Fprintf(w, "Filename: %s\nSize: %d\nMD5sum: %x\nSHA256: %x\n\n", file, len(deb), md, sha)
}

// deb builds a .deb: an ar archive of debian-binary, control.tar.gz and
// data.tar.gz.
func (p pkg) deb(payload int) []byte {
	r := rand.New(rand.NewPCG(uint64(p.i), 7))
	body := make([]byte, payload)
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	control := tgz(map[string][]byte{"./control": []byte(p.control())})
	data := tgz(map[string][]byte{"./usr/share/doc/" + p.name + "/payload": body})
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	arMember(&b, "debian-binary", []byte("2.0\n"))
	arMember(&b, "control.tar.gz", control)
	arMember(&b, "data.tar.gz", data)
	return b.Bytes()
}

func arMember(b *bytes.Buffer, name string, data []byte) {
	fmt.Fprintf(b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 1700000000, 0, 0, "100644", len(data))
	b.Write(data)
	if len(data)%2 == 1 {
		b.WriteByte('\n')
	}
}

func tgz(files map[string][]byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0), Uname: "root", Gname: "root"})
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}
