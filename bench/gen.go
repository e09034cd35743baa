package bench

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// baseMs is 2026-11-01T00:00:00Z in milliseconds since the Unix epoch; see BaseTime.
const baseMs = 1_793_491_200_000

// BaseTime returns the fixed instant that generated events lead up to,
// 2026-11-01T00:00:00Z: every eventTime lies in the 30 days before it, so that
// output does not depend on the wall clock.
func BaseTime() time.Time {
	return time.UnixMilli(baseMs).UTC()
}

const (
	// userCount is the size of the simulated user population.
	userCount = 100_000
	// dayMs is one day in milliseconds.
	dayMs = 24 * 3600 * 1000
	// timeSpanMs is the window, ending at BaseTime, over which eventTime is spread.
	timeSpanMs = 30 * dayMs
	// windowStartMs is the earliest eventTime.
	windowStartMs = baseMs - timeSpanMs
	// maxAttributes bounds the attributes of one event (the minimum is 5).
	maxAttributes = 12
	// userStride permutes Zipf ranks into user numbers, so that the most
	// active users are not simply user-0, user-1, …; it is coprime with userCount.
	userStride = 48_271
)

// Generator produces a deterministic stream of realistic analytics events in
// the form of SPEC.md section 3. The same seed and options always give the same
// bytes. A Generator is not safe for concurrent use; give each goroutine its own.
type Generator struct {
	rng
	users      []uint64 // userAliasTable, shared by all generators
	seed       uint64
	appKey     []byte // JSON-quoted once, since every event repeats it
	messageIDs bool
	idSalt     [2]uint64 // XORed into each messageId's random bits; see WithMessageIDSalt
	sentAt     bool
}

// NewGenerator returns a Generator seeded with seed whose events carry appKey.
func NewGenerator(seed int64, appKey string) *Generator {
	return &Generator{
		rng:    rng{pcg: rand.NewPCG(uint64(seed), pcgStream)},
		users:  userAliasTable(),
		seed:   uint64(seed),
		appKey: appendJSONString(nil, appKey),
	}
}

// pcgStream is the second PCG seed word of a Generator created by NewGenerator.
const pcgStream = 0x7472_6f76_6562_656e // "troveben" in ASCII

// WithMessageIDs makes every following event carry a unique, UUID-shaped
// "messageId" drawn from the generator's random stream (so still
// deterministic), and returns g.
func (g *Generator) WithMessageIDs(on bool) *Generator {
	g.messageIDs = on
	return g
}

// WithMessageIDSalt mixes salt into every following messageId, and returns
// g. The rest of each event, and which random draws make it, stay as they
// are: generators that differ only in salt send the same events under
// other ids, so that a second run against the same server is not counted
// as duplicates of the first. Salt 0, the default, leaves the ids as the
// seed alone gives them.
func (g *Generator) WithMessageIDSalt(salt uint64) *Generator {
	g.idSalt = [2]uint64{}
	if salt != 0 {
		// XOR with constants is a bijection, so ids that differ within a
		// run still differ; mix64 spreads one word of salt over both halves.
		g.idSalt = [2]uint64{salt, mix64(salt)}
	}
	return g
}

// WithSentAt makes every following event carry a "sentAt" a few seconds after
// its eventTime, as an SDK that queues events before sending would, and
// returns g. Because eventTime lies before BaseTime, a server that corrects
// clock skew will shift such events towards its own clock.
func (g *Generator) WithSentAt(on bool) *Generator {
	g.sentAt = on
	return g
}

// reseed restarts the random stream at a position determined by the
// generator's seed and stream alone, so that request number stream carries
// the same events whichever worker builds it.
func (g *Generator) reseed(stream uint64) {
	g.pcg.Seed(g.seed, pcgStream^(stream*0x9e37_79b9_7f4a_7c15+1))
	g.bits, g.nbits = 0, 0
}

// rng is the random stream of a generator, with the cheap draws that
// synthetic data needs.
type rng struct {
	pcg   *rand.PCG
	bits  uint64 // random bits not yet used by intn
	nbits uint
}

// intn returns a number in [0, n), for 0 < n <= 1<<16. It takes 16 bits from
// a reservoir, so four small choices cost one PCG step; the bias, at most
// n/65536, does not matter for synthetic data.
func (g *rng) intn(n int) int {
	if g.nbits < 16 {
		g.bits, g.nbits = g.pcg.Uint64(), 64
	}
	v := g.bits & 0xffff
	g.bits >>= 16
	g.nbits -= 16
	return int(v * uint64(n) >> 16)
}

// uint64n returns a number in [0, n), with negligible bias for n far below 2^64.
func (g *rng) uint64n(n uint64) uint64 {
	hi, _ := bits.Mul64(g.pcg.Uint64(), n)
	return hi
}

// skewed returns an index in [0, n) that favours small values: the smaller of
// two uniform draws, so index 0 is about 2n−1 times as likely as index n−1.
func (g *rng) skewed(n int) int {
	return min(g.intn(n), g.intn(n))
}

// AppendEvent appends one compact JSON event object, without a trailing
// newline, to dst and returns the extended slice.
func (g *Generator) AppendEvent(dst []byte) []byte {
	def := &eventDefs[pickEvent(uint32(g.pcg.Uint64()>>32))]
	user := (pickAlias(g.users, g.pcg.Uint64())*userStride + 12_345) % userCount
	uh := mix64(user) // per-user traits are stable across events and seeds
	eventMs := baseMs - 1 - int64(g.uint64n(timeSpanMs))

	dst = append(dst, `{"type":"event","event":"`...)
	dst = append(dst, def.name...)
	dst = append(dst, `","userId":"user-`...)
	dst = strconv.AppendUint(dst, user, 10)
	dst = append(dst, `","eventTime":"`...)
	dst = appendTime(dst, eventMs)
	dst = append(dst, `","appKey":`...)
	dst = append(dst, g.appKey...)
	if g.messageIDs {
		dst = append(dst, `,"messageId":"`...)
		dst = appendUUID(dst, g.pcg.Uint64()^g.idSalt[0], g.pcg.Uint64()^g.idSalt[1])
		dst = append(dst, '"')
	}
	if g.sentAt {
		dst = append(dst, `,"sentAt":"`...)
		dst = appendTime(dst, eventMs+200+int64(g.intn(5_000)))
		dst = append(dst, '"')
	}
	ua := &userAgents[g.pickUserAgent(uh)]
	dst = append(dst, `,"context":{"userAgent":"`...)
	dst = append(dst, ua.ua...)
	dst = append(dst, `","locale":"`...)
	dst = append(dst, locales[g.skewed(len(locales))]...)
	dst = append(dst, '"')
	if g.intn(5) < 3 {
		// Most events come through a backend that forwards the client's
		// address; the server fills in the rest from the connection.
		dst = append(dst, `,"ip":"`...)
		dst = appendIPv4(dst, uh)
		dst = append(dst, '"')
	}
	dst = append(dst, `},"attributes":{`...)

	st := attrState{g: g, user: user, uh: uh, eventMs: eventMs, platform: ua.platform}
	n := 0
	for _, k := range def.attrs {
		dst = st.appendAttr(dst, k, n)
		n++
	}
	for _, k := range commonAttrs {
		dst = st.appendAttr(dst, k, n)
		n++
	}
	for _, o := range optionalAttrs {
		if n >= maxAttributes {
			break
		}
		if g.intn(100) < o.percent && def.has&(1<<o.kind) == 0 {
			dst = st.appendAttr(dst, o.kind, n)
			n++
		}
	}
	return append(dst, "}}"...)
}

// AppendJSONArray appends a JSON array of n events to dst and returns the
// extended slice.
func (g *Generator) AppendJSONArray(dst []byte, n int) []byte {
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = g.AppendEvent(dst)
	}
	return append(dst, ']')
}

// AppendNDJSON appends n events to dst, one per line, each line ending in a
// newline, and returns the extended slice.
func (g *Generator) AppendNDJSON(dst []byte, n int) []byte {
	for range n {
		dst = g.AppendEvent(dst)
		dst = append(dst, '\n')
	}
	return dst
}

// attrState carries what the attribute writers of one event share.
type attrState struct {
	g        *Generator
	user     uint64
	uh       uint64
	eventMs  int64
	platform string
	price    int // index into prices, set by aPrice for aRevenue
}

// appendAttr appends attribute k as the n-th member of the attributes object.
// It is one case per attribute kind of the catalog (gen_catalog.go): a
// table, long because the catalog is, and kept in one switch so that each
// kind's distribution of values reads in one place.
func (st *attrState) appendAttr(dst []byte, k attrKind, n int) []byte {
	if n > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, attrKeys[k]...)
	g := st.g
	switch k {
	case aScreen:
		dst = appendQuoted(dst, screens[g.skewed(len(screens))])
	case aPrevScreen:
		dst = appendQuoted(dst, screens[g.skewed(len(screens))])
	case aButton:
		dst = appendQuoted(dst, buttons[g.skewed(len(buttons))])
	case aDurationMs:
		// Log-uniform from 20 ms to about 40 s: the one high-entropy number.
		dst = strconv.AppendInt(dst, int64(20)<<g.intn(11)+int64(g.intn(1000)), 10)
	case aQuery:
		dst = appendQuoted(dst, queries[g.skewed(len(queries))])
	case aResultsCount:
		dst = strconv.AppendInt(dst, int64(g.intn(8)*g.intn(40)), 10)
	case aProduct:
		p := g.skewed(len(products))
		dst = append(dst, `{"id":"`...)
		dst = append(dst, products[p].id...)
		dst = append(dst, `","category":"`...)
		dst = append(dst, products[p].category...)
		dst = append(dst, `","brand":"`...)
		dst = append(dst, products[p].brand...)
		dst = append(dst, `"}`...)
	case aProductID:
		dst = appendQuoted(dst, products[g.skewed(len(products))].id)
	case aCategory:
		dst = appendQuoted(dst, products[g.skewed(len(products))].category)
	case aPrice:
		st.price = g.skewed(len(prices))
		dst = append(dst, prices[st.price]...)
	case aQuantity:
		dst = strconv.AppendInt(dst, int64(1+g.skewed(5)), 10)
	case aCurrency:
		dst = appendQuoted(dst, currencies[g.skewed(len(currencies))])
	case aRevenue:
		cents := priceCents[st.price] * int64(1+g.skewed(3))
		dst = strconv.AppendInt(dst, cents/100, 10)
		dst = append(dst, '.')
		dst = append(dst, byte('0'+cents%100/10), byte('0'+cents%10))
	case aOrderID:
		dst = append(dst, `"ord-`...)
		dst = strconv.AppendUint(dst, 10_000_000+g.uint64n(90_000_000), 10)
		dst = append(dst, '"')
	case aItems:
		dst = append(dst, '[')
		for i := range 1 + g.skewed(4) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, products[g.skewed(len(products))].id)
		}
		dst = append(dst, ']')
	case aPlan:
		dst = appendQuoted(dst, plans[int(st.uh>>20)%len(plans)])
	case aIsTrial, aEnabled, aColdStart, aFirstTime:
		dst = appendBool(dst, g.intn(4) == 0)
	case aCampaign:
		dst = appendQuoted(dst, campaigns[g.skewed(len(campaigns))])
	case aMethod:
		dst = appendQuoted(dst, methods[g.skewed(len(methods))])
	case aStep:
		dst = strconv.AppendInt(dst, int64(1+g.intn(6)), 10)
	case aErrorCode:
		dst = appendQuoted(dst, errorCodes[g.skewed(len(errorCodes))])
	case aRating:
		dst = strconv.AppendInt(dst, int64(5-g.skewed(5)), 10)
	case aPercent:
		dst = strconv.AppendInt(dst, int64(25*(1+g.intn(4))), 10)
	case aVideoID:
		dst = append(dst, `"vid-`...)
		dst = strconv.AppendInt(dst, int64(1000+g.skewed(300)), 10)
		dst = append(dst, '"')
	case aPositionSec:
		dst = strconv.AppendInt(dst, int64(g.intn(1800)), 10)
	case aNotifType:
		dst = appendQuoted(dst, notifTypes[g.skewed(len(notifTypes))])
	case aChannel:
		dst = appendQuoted(dst, channels[g.skewed(len(channels))])
	case aSetting:
		dst = appendQuoted(dst, settings[g.skewed(len(settings))])
	case aPermission:
		dst = appendQuoted(dst, permissions[g.skewed(len(permissions))])
	case aCoupon:
		dst = appendQuoted(dst, coupons[g.skewed(len(coupons))])
	case aDiscountPct:
		dst = strconv.AppendInt(dst, int64(5*(1+g.skewed(6))), 10)
	case aShareTarget:
		dst = appendQuoted(dst, shareTargets[g.skewed(len(shareTargets))])
	case aContentID:
		dst = append(dst, `"post-`...)
		dst = strconv.AppendInt(dst, int64(50_000+g.skewed(5000)), 10)
		dst = append(dst, '"')
	case aFromVersion:
		dst = appendQuoted(dst, appVersions[1+g.skewed(len(appVersions)-1)])
	case aToVersion:
		dst = appendQuoted(dst, appVersions[0])
	case aNetwork:
		dst = appendQuoted(dst, networks[g.skewed(len(networks))])
	case aReferrer:
		dst = appendQuoted(dst, referrers[g.skewed(len(referrers))])
	case aExperiment:
		e := g.intn(len(experiments))
		dst = append(dst, `{"name":"`...)
		dst = append(dst, experiments[e]...)
		dst = append(dst, `","variant":"`...)
		dst = append(dst, "ABC"[(st.uh>>(8+e))%3])
		dst = append(dst, `"}`...)
	case aTags:
		dst = append(dst, '[')
		for i := range 1 + g.intn(3) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, tags[(int(st.uh>>30)+i*3)%len(tags)])
		}
		dst = append(dst, ']')
	case aSessionID:
		// One session per user and day: repeated across that day's events.
		dst = append(dst, `"sess-`...)
		dst = appendHex32(dst, uint32(mix64(st.user<<20^uint64(st.eventMs/86_400_000))))
		dst = append(dst, '"')
	case aPlatform:
		dst = appendQuoted(dst, st.platform)
	case aAppVersion:
		// Most users run the latest release or the one before it.
		v := int(st.uh>>40) % 8
		if v >= len(appVersions) {
			v = v % 2
		}
		dst = appendQuoted(dst, appVersions[v])
	case aCountry:
		dst = appendQuoted(dst, countries[skewedHash(bits.RotateLeft64(st.uh, 17), len(countries))])
	case aScore:
		dst = strconv.AppendFloat(dst, float64(g.intn(10_000))/100, 'f', -1, 64)
	case aNote:
		dst = append(dst, "null"...)
	default:
		panic("BUG: unknown attribute kind")
	}
	return dst
}

// pickEvent maps a uniform 32-bit number to an event index with the Zipf-like
// weights of eventCDF.
func pickEvent(u uint32) int {
	lo, hi := 0, len(eventCDF)-1
	for lo < hi {
		m := (lo + hi) / 2
		if u < eventCDF[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// userAliasTable returns the alias table (Vose's method) that draws user
// ranks with weight (rank+50)^-1.1, the distribution of rand.NewZipf(r, 1.1,
// 50, userCount-1): the busiest user sends about 0.4 % of all events and most
// users a handful. A draw costs one random word and one table read where
// rand.Zipf costs an Exp and a Log. Each entry holds the threshold in its high
// 32 bits and the alias in its low 32.
var userAliasTable = sync.OnceValue(func() []uint64 {
	return newAliasTable(userCount, func(i int) float64 { return math.Pow(float64(i)+50, -1.1) })
})

// newAliasTable builds an alias table over n outcomes with the given weights.
func newAliasTable(n int, weight func(i int) float64) []uint64 {
	p := make([]float64, n)
	sum := 0.0
	for i := range p {
		p[i] = weight(i)
		sum += p[i]
	}
	var small, large []int
	for i := range p {
		p[i] *= float64(n) / sum
		if p[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	table := make([]uint64, n)
	for len(small) > 0 && len(large) > 0 {
		l, h := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		table[l] = uint64(p[l]*(1<<32))<<32 | uint64(h)
		p[h] += p[l] - 1
		if p[h] < 1 {
			large = large[:len(large)-1]
			small = append(small, h)
		}
	}
	// What is left has probability 1, up to rounding: it is always itself.
	for _, i := range append(small, large...) {
		table[i] = math.MaxUint32<<32 | uint64(i)
	}
	return table
}

// pickAlias draws an outcome from an alias table with the random word u.
func pickAlias(table []uint64, u uint64) uint64 {
	i := (u >> 32) * uint64(len(table)) >> 32
	e := table[i]
	if uint32(u) < uint32(e>>32) {
		return i
	}
	return e & math.MaxUint32
}

// pickUserAgent returns the user's usual device, or now and then another one.
func (g *Generator) pickUserAgent(uh uint64) int {
	if g.intn(10) == 0 {
		return g.skewed(len(userAgents))
	}
	return skewedHash(uh, len(userAgents))
}

// skewedHash is skewed for a value derived from a hash rather than the stream.
func skewedHash(h uint64, n int) int {
	a, b := int(h%uint64(n)), int((h>>32)%uint64(n))
	return min(a, b)
}

// mix64 is the SplitMix64 finaliser: a cheap, well-spread hash of x.
func mix64(x uint64) uint64 {
	x += 0x9e37_79b9_7f4a_7c15
	x = (x ^ x>>30) * 0xbf58_476d_1ce4_e5b9
	x = (x ^ x>>27) * 0x94d0_49bb_1331_11eb
	return x ^ x>>31
}

// appendTime appends ms since the Unix epoch as RFC 3339 in UTC with
// milliseconds, e.g. 2026-10-14T08:23:11.482Z.
func appendTime(dst []byte, ms int64) []byte {
	off := ms - windowStartMs
	day := off / dayMs
	if off < 0 || day >= int64(len(dayPrefixes)) {
		return appendTimeSlow(dst, ms)
	}
	// Generated times fall in a few known days: copy the date, compute the clock.
	dst = append(dst, dayPrefixes[day][:]...)
	rem := int(off % dayMs)
	dst = append2Digits(dst, rem/3_600_000)
	dst = append(dst, ':')
	dst = append2Digits(dst, rem/60_000%60)
	dst = append(dst, ':')
	dst = append2Digits(dst, rem/1000%60)
	dst = append(dst, '.', byte('0'+rem%1000/100))
	dst = append2Digits(dst, rem%100)
	return append(dst, 'Z')
}

// dayPrefixes holds "YYYY-MM-DDT" for each day from windowStartMs to two days
// after BaseTime, which covers every eventTime and sentAt generated.
var dayPrefixes = func() (p [32][11]byte) {
	for i := range p {
		copy(p[i][:], time.UnixMilli(windowStartMs+int64(i)*dayMs).UTC().Format("2006-01-02T"))
	}
	return p
}()

// twoDigits holds "00" to "99" back to back.
const twoDigits = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// append2Digits appends v, in [0, 100), as two digits.
func append2Digits(dst []byte, v int) []byte {
	return append(dst, twoDigits[2*v], twoDigits[2*v+1])
}

// appendTimeSlow is appendTime for any time.
func appendTimeSlow(dst []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = appendDigits(dst, y, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(mo), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, h, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, s, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, int(t.Nanosecond()/1e6), 3)
	return append(dst, 'Z')
}

// appendDigits appends v, which must be non-negative, zero-padded to width digits.
func appendDigits(dst []byte, v, width int) []byte {
	var b [4]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}

// appendIPv4 appends a user's usual IPv4 address, derived from the user hash.
func appendIPv4(dst []byte, uh uint64) []byte {
	dst = strconv.AppendUint(dst, uint64(ipPrefixes[uh>>56%uint64(len(ipPrefixes))]), 10)
	for i := range 3 {
		dst = append(dst, '.')
		dst = strconv.AppendUint(dst, uh>>(8*i)&0xff, 10)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendHex32 appends v as 8 lowercase hex digits.
func appendHex32(dst []byte, v uint32) []byte {
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[v>>uint(shift)&0xf])
	}
	return dst
}

// appendUUID appends hi and lo formatted as a version 4 UUID.
func appendUUID(dst []byte, hi, lo uint64) []byte {
	hi = hi&^0xf000 | 0x4000                                 // version 4
	lo = lo&^(0xc000_0000_0000_0000) | 0x8000_0000_0000_0000 // RFC 4122 variant
	var b [36]byte
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	hexInto(b[0:8], hi>>32)
	hexInto(b[9:13], hi>>16)
	hexInto(b[14:18], hi)
	hexInto(b[19:23], lo>>48)
	hexInto(b[24:36], lo)
	return append(dst, b[:]...)
}

// hexInto fills b with the low 4*len(b) bits of v as lowercase hex digits.
func hexInto(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// appendQuoted appends s, which must need no escaping, in double quotes.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendJSONString appends s as a JSON string, escaping what JSON requires.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, `\u00`...)
			dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
