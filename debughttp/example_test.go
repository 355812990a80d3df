package debughttp_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coordkit/clientmanager/debughttp"
)

// A process mounts the handler on its debug listener; in a component the
// Sources are its *clientmanager.Manager and *startup.Runner.
func ExampleNew() {
	reg := prometheus.NewRegistry()
	h, err := debughttp.New(debughttp.Sources{Gatherer: reg}, debughttp.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h) // in a binary: http.Serve(lis, h)
	defer srv.Close()

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s", path, resp.StatusCode, b)
	}
	// Output:
	// /healthz 200 ok
	// /readyz 200 ready
}
