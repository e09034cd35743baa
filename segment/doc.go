// Package segment speaks the Segment HTTP Tracking API (what Segment's and
// RudderStack's SDKs send): POST /v1/batch, /v1/track, /v1/identify,
// /v1/page, /v1/screen, /v1/alias and /v1/group, and RudderStack's
// GET /cluster-info.
//
// It owns no storage rules. Each message is translated into a Trove event
// (translate.go) and handed to package ingest, which validates it, applies
// the clock-skew rule, deduplicates it by messageId and stores or
// quarantines it exactly as POST /v1/events does; identify and alias
// messages also become profile updates through package profile
// (traits.go), when the write key is a token with ingest scope or the app
// sets public_profile_writes: the appKey alone is public. The README's "Segment and RudderStack SDKs" section has
// the mapping table.
package segment
