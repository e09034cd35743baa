package bench

import (
	"bytes"
	"strings"
)

// segmentPath is the Segment HTTP Tracking API's batch endpoint
// (package segment), which `trove bench -segment` loads.
const segmentPath = "/v1/batch"

// segment returns t with the Segment batch endpoint in place of the
// Events API.
func (t target) segment() target {
	t.uri = strings.TrimSuffix(t.uri, eventsPath) + segmentPath
	return t
}

// AppendSegmentBatch appends a Segment batch of n track messages to dst:
// the events AppendEvent makes, each as a track message (event and userId
// as they are, eventTime as timestamp, attributes as properties, context
// kept, no appKey: the write key names the app), as Segment's SDKs send
// them.
func (g *Generator) AppendSegmentBatch(dst []byte, n int) []byte {
	dst = append(dst, `{"batch":[`...)
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		start := len(dst)
		dst = g.AppendEvent(dst)
		dst = g.toTrack(dst, start)
	}
	return append(dst, `]}`...)
}

// toTrack rewrites the event at dst[start:] into a track message, in place:
// the renamed keys have the same lengths, and the appKey is cut out.
func (g *Generator) toTrack(dst []byte, start int) []byte {
	ev := dst[start:]
	copy(ev, `{"type":"track"`) // over {"type":"event"
	if i := bytes.Index(ev, []byte(`"eventTime":`)); i >= 0 {
		copy(ev[i:], `"timestamp":`)
	}
	if i := bytes.Index(ev, []byte(`},"attributes":{`)); i >= 0 {
		copy(ev[i:], `},"properties":{`)
	}
	key := `,"appKey":`
	if i := bytes.Index(ev, []byte(key)); i >= 0 {
		cut := len(key) + len(g.appKey)
		n := copy(ev[i:], ev[i+cut:])
		dst = dst[:start+i+n]
	}
	return dst
}
