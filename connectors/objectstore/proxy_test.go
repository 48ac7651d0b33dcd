package objectstore_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
)

// proxy stands between the connector and the gateway: it passes requests
// through, counts the response bytes it has sent, and answers with a
// fault instead when told to.
type proxy struct {
	srv  *httptest.Server
	sent atomic.Int64

	mu    sync.Mutex
	fault func(r *http.Request) *fault
}

// fault is an error answer, as S3 gives it.
type fault struct {
	status int
	code   string
	msg    string
	header map[string]string
	body   string // instead of the <Error> document
	// hold, if set, is waited on before answering (a slow server).
	hold <-chan struct{}
}

func newProxy(t testing.TB) *proxy {
	t.Helper()
	u, err := url.Parse(gateway(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // pass bytes on as they come
	rp.ModifyResponse = func(r *http.Response) error {
		r.Body = &countingBody{r.Body, &p.sent}
		return nil
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		fn := p.fault
		p.mu.Unlock()
		if fn != nil {
			if f := fn(r); f != nil {
				if f.hold != nil {
					select {
					case <-f.hold:
					case <-r.Context().Done():
						return
					}
				}
				for k, v := range f.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(f.status)
				if r.Method == http.MethodHead {
					return
				}
				body := f.body
				if body == "" {
					body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + f.code + `</Code><Message>` + f.msg + `</Message><RequestId>t1</RequestId></Error>`
				}
				io.WriteString(w, body)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) set(fn func(r *http.Request) *fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = fn
}

// bucket opens name through the proxy, with the SDK's own retries off so
// that a fault reaches the connector at once.
func (p *proxy) bucket(t testing.TB, name string) *blob.Bucket {
	t.Helper()
	b, err := gateway(t).OpenBucketErr(t.Context(), name, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(p.srv.URL)
		o.RetryMaxAttempts = 1
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
