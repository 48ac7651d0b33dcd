package objectstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"gocloud.dev/blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/objectstore"
)

// The conformance suite, on a real S3 server (plain and versioned
// buckets) and on a local directory: the same connector code on each.
func TestConformanceS3(t *testing.T) {
	t.Parallel()
	b, _ := s3Bucket(t, false)
	conformance(t, b)
}

func TestConformanceS3Versioned(t *testing.T) {
	t.Parallel()
	b, _ := s3Bucket(t, true)
	conformance(t, b)
}

func TestConformanceFileblob(t *testing.T) {
	t.Parallel()
	b, _ := fileBucket(t)
	conformance(t, b)
}

// conformance runs the suite with each subject one person with two
// account ids among 200 others, and next to keys built to catch a prefix
// match that forgets the closing '/' ("uploads/s1a0/" for "s1a").
func conformance(t *testing.T, b *blob.Bucket) {
	others := map[string]string{}
	for i := range 200 {
		id := fmt.Sprintf("o%d", i)
		others["uploads/"+id+"/a.png"] = "other upload " + id
		others["uploads/"+id+"/sub/b.jpg"] = "other nested upload " + id
		others["generated/"+id+"/g.png"] = "other generated " + id
		others["masks/"+id+"/m.png"] = "other mask " + id
	}
	put(t, b, others)
	c := newConnector(t, b, nil)
	var faults connectortest.Injector
	objectstore.SetInject(c, faults.Next)
	var seq atomic.Int64
	connectortest.Run(t, connectortest.Fixture{
		Connector: c,
		Inject:    faults.Inject,
		Seed: func(t testing.TB) connectortest.Subject {
			n := seq.Add(1)
			a, z := fmt.Sprintf("s%da", n), fmt.Sprintf("s%db", n)
			put(t, b, map[string]string{
				"uploads/" + a + "/a.png":     "photo a of " + a,
				"uploads/" + a + "/sub/b.jpg": "photo b of " + a,
				"uploads/" + z + "/c.png":     "photo c of " + z,
				"generated/" + a + "/x.png":   "generated x of " + a,
				"masks/" + z + "/m.png":       "mask of " + z,
				// Neighbours: other people's keys sharing the subject's
				// characters.
				"uploads/" + a + "0/n.png":   "neighbour",
				"uploads/" + a + "x/n.png":   "neighbour",
				"uploads/" + a + ".png":      "neighbour",
				"generated/" + z + "0/n.png": "neighbour",
				"masks/" + a + "0/n.png":     "neighbour",
			})
			var mine []string
			for _, d := range []string{"uploads/", "generated/", "masks/"} {
				mine = append(mine, d+a+"/", d+z+"/")
			}
			return connectortest.Subject{
				Identities: []connectors.Identity{user(a)},
				Linked:     []connectors.Identity{user(z)},
				Others:     func(t testing.TB) int { return digest(t, b, mine...) },
				Datasets: []connectortest.Dataset{
					{System: system, Dataset: "uploads", Fields: plan(connectors.ActionDelete), Records: 3},
					{System: system, Dataset: "masks", Fields: plan(connectors.ActionDelete), Records: 1},
					{System: system, Dataset: "generated", Fields: plan(connectors.ActionRetain), Records: 1},
				},
			}
		},
	})
}
