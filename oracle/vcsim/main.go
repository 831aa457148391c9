// The vSphere simulator (govmomi 0.24.2's vcsim, ESX model) as snaptree starts it: https on
// 127.0.0.1 with a free port; the first line on stdout is the URL (with credentials it
// accepts). "vcsim DIR" keeps the datastore under DIR (else under TMPDIR). It stops when stdin
// closes (its parent died, even by SIGKILL) or on SIGINT/SIGTERM, and then removes DIR.
//
// Two mends make libvirt's ESX driver able to talk to it (semantics.md §2.11):
//   - vcsim leaves xsi:type out on the items of array-valued properties, which real ESX sends
//     and libvirt needs ("AnyType is missing 'type' property"): it is added to every item;
//   - vcsim's VMs have empty .vmx files, which libvirt cannot parse: an empty one is served as
//     a minimal configuration.
//
// Build (GOPATH mode): GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim main.go
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	// a backstop to the stdin watch below: die with the parent
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)

	dir := ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
		_ = os.Setenv("TMPDIR", dir) // where the model makes its datastore directory
	}
	model := simulator.ESX()
	if err := model.Create(); err != nil {
		fail(err)
	}
	model.Service.TLS = new(tls.Config)
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0"}
	inner := model.Service.NewServer() // registers the handlers; clients use the front server below

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	front := &http.Server{Handler: mend(inner.Config.Handler)}
	tlsListener := tls.NewListener(listener, &tls.Config{Certificates: inner.TLS.Certificates})
	go func() { _ = front.Serve(tlsListener) }()

	u := url.URL{Scheme: "https", Host: listener.Addr().String(), Path: "/sdk", User: simulator.DefaultLogin}
	fmt.Println(u.String())

	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); done <- struct{}{} }()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-signals; done <- struct{}{} }()
	<-done
	_ = listener.Close()
	model.Remove()
	if dir != "" {
		_ = os.RemoveAll(dir) // the caller's scratch directory, also when the caller was killed
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "vcsim:", err)
	os.Exit(1)
}

// mend wraps the simulator's handler, rewriting SOAP replies and empty .vmx downloads.
func mend(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requested := r.URL.Path // the datastore handler rewrites r.URL.Path
		recorder := httptest.NewRecorder()
		next.ServeHTTP(recorder, r)
		body := recorder.Body.Bytes()
		if requested == "/sdk" && bytes.Contains(body, []byte(`:type="ArrayOf`)) {
			body = typeArrayItems(body)
		}
		if r.Method == http.MethodGet && strings.HasPrefix(requested, "/folder/") &&
			strings.HasSuffix(requested, ".vmx") && recorder.Code == http.StatusOK && len(body) == 0 {
			body = minimalVmx(strings.TrimSuffix(path.Base(requested), ".vmx"))
		}
		for key, values := range recorder.Header() {
			w.Header()[key] = values
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(recorder.Code)
		_, _ = w.Write(body)
	})
}

// primitive item types carry the xsd prefix: ArrayOfString holds xsd:string items
var primitive = map[string]bool{"String": true, "Int": true, "Long": true, "Short": true, "Byte": true,
	"Boolean": true, "Double": true, "Float": true, "DateTime": true, "AnyURI": true, "Base64Binary": true}

// typeArrayItems gives each child of an element typed ArrayOfX an xsi:type of X where it has none.
func typeArrayItems(body []byte) []byte {
	decoder := xml.NewDecoder(bytes.NewReader(body))
	var stack []string // the item type each open element's children need ("" for none)
	var out bytes.Buffer
	last := 0
	for {
		token, err := decoder.RawToken()
		if err != nil {
			break
		}
		switch t := token.(type) {
		case xml.StartElement:
			end := int(decoder.InputOffset())
			if len(stack) > 0 && stack[len(stack)-1] != "" && !hasType(t) {
				insert := end - 1 // before '>' or '/>'
				if body[insert-1] == '/' {
					insert--
				}
				out.Write(body[last:insert])
				fmt.Fprintf(&out, ` xsi:type="%s"`, stack[len(stack)-1])
				last = insert
			}
			stack = append(stack, itemType(t))
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	out.Write(body[last:])
	return out.Bytes()
}

// vcsim writes the attribute as XMLSchema-instance:type, declaring that prefix on the element
func isType(a xml.Attr) bool {
	return a.Name.Local == "type" && (a.Name.Space == "xsi" || a.Name.Space == "XMLSchema-instance")
}

func hasType(t xml.StartElement) bool {
	for _, a := range t.Attr {
		if isType(a) {
			return true
		}
	}
	return false
}

func itemType(t xml.StartElement) string {
	for _, a := range t.Attr {
		if isType(a) && strings.HasPrefix(a.Value, "ArrayOf") {
			item := strings.TrimPrefix(a.Value, "ArrayOf")
			if primitive[item] {
				return "xsd:" + strings.ToLower(item[:1]) + item[1:]
			}
			return item
		}
	}
	return ""
}

// minimalVmx is the least libvirt's VMX parser accepts as a VM's configuration.
func minimalVmx(name string) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	for _, line := range []string{`.encoding = "UTF-8"`, `config.version = "8"`, `virtualHW.version = "7"`,
		fmt.Sprintf("displayName = %q", name), `memsize = "32"`, `numvcpus = "1"`, `guestOS = "other"`} {
		fmt.Fprintln(w, line)
	}
	_ = w.Flush()
	return b.Bytes()
}
