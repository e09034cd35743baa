package bench

import (
	"math/rand/v2"
	"strconv"
)

const (
	// profileStream is the second PCG seed word of a ProfileGenerator.
	profileStream = 0x7472_6f76_6570_726f // "trovepro" in ASCII
	// profileSalt makes a user's profile traits independent of the traits
	// the event generator gives the user with the same number.
	profileSalt = 0x7072_6f66_696c_6573 // "profiles"
	// fbStride permutes Zipf ranks into Facebook alias numbers; it is coprime
	// with userCount.
	fbStride = 7_919

	// ProfilePopulation is the number of existing users that profile updates
	// are drawn from, puser-0 to puser-99999; created users are numbered from
	// ProfilePopulation up.
	ProfilePopulation = userCount

	// MaxProfileFields bounds the attribute fields (identity keys not
	// counted) of one generated profile object.
	MaxProfileFields = 30
)

// ProfileGenerator produces a deterministic stream of realistic profile
// objects for the User Profiles API (SPEC.md section 4). The mix is about
// 20 % creates of new users, with their built-in and custom attributes, 70 %
// updates of existing users drawn with Zipf popularity (the same skew as the
// events' users) — set, inc, add, remove and null; one in ten names the user
// by "customer_id" rather than "userId" — and 10 % profiles known only by a
// Facebook alias. Every profile has an identity and at most
// MaxProfileFields attribute fields, and no key twice. The same seed always
// gives the same bytes. A ProfileGenerator is not safe for concurrent use;
// give each goroutine its own.
type ProfileGenerator struct {
	rng
	users   []uint64 // userAliasTable, shared with the event generators
	seed    uint64
	nextNew uint64 // number of the next created user

	// track, when set, makes the generator note in tracked the number of
	// every user it names by userId, so that a load run can read them back.
	track   bool
	tracked []uint64
}

// NewProfileGenerator returns a ProfileGenerator seeded with seed. Its first
// created user is puser-100000 (ProfilePopulation), the next puser-100001,
// and so on.
func NewProfileGenerator(seed int64) *ProfileGenerator {
	return &ProfileGenerator{
		rng:     rng{pcg: rand.NewPCG(uint64(seed), profileStream)},
		users:   userAliasTable(),
		seed:    uint64(seed),
		nextNew: ProfilePopulation,
	}
}

// reseedRequest restarts the generator for request number i of a run whose
// requests hold batch profiles each, so that request i carries the same
// profiles whichever worker builds it. Created users of request i are
// numbered from ProfilePopulation + i*batch, so no two requests create the
// same user.
func (g *ProfileGenerator) reseedRequest(i uint64, batch int) {
	g.pcg.Seed(g.seed, profileStream^(i*0x9e37_79b9_7f4a_7c15+1))
	g.bits, g.nbits = 0, 0
	g.nextNew = ProfilePopulation + i*uint64(batch)
	g.tracked = g.tracked[:0]
}

// AppendRequest appends a whole request body for POST /v1/users/profile,
// {"appKey":…,"user_profiles":[…]} with n profiles, to dst and returns the
// extended slice.
func (g *ProfileGenerator) AppendRequest(dst []byte, appKey string, n int) []byte {
	dst = append(dst, `{"appKey":`...)
	dst = appendJSONString(dst, appKey)
	dst = append(dst, `,"user_profiles":[`...)
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = g.AppendProfile(dst)
	}
	return append(dst, "]}"...)
}

// AppendProfile appends one compact JSON profile object to dst and returns
// the extended slice.
func (g *ProfileGenerator) AppendProfile(dst []byte) []byte {
	switch r := g.intn(100); {
	case r < 20:
		return g.appendCreate(dst)
	case r < 90:
		return g.appendUpdate(dst)
	default:
		return g.appendAliasOnly(dst)
	}
}

// appendCreate appends the first profile of a user not seen before: who the
// user is, and how they signed up.
func (g *ProfileGenerator) appendCreate(dst []byte) []byte {
	user := g.nextNew
	g.nextNew++
	uh := mix64(user ^ profileSalt)
	c := &profileCountries[skewedHash(uh>>3, len(profileCountries))]
	first := &firstNames[uh%uint64(len(firstNames))]
	last := &lastNames[(uh>>12)%uint64(len(lastNames))]
	signupMs := baseMs - 1 - int64(g.uint64n(timeSpanMs))

	dst = g.appendUserID(dst, user, false)
	if g.intn(4) == 0 {
		// Signed up with Google: the alias is this user's alone, so it can
		// never belong to another profile (which would be a 409).
		dst = append(dst, `,"user_alias":{"alias_label":"google","alias_id":"g`...)
		dst = strconv.AppendUint(dst, user, 10)
		dst = append(dst, `"}`...)
	}
	dst = append(dst, `,"first_name":"`...)
	dst = append(dst, first.name...)
	dst = append(dst, `","last_name":"`...)
	dst = append(dst, last.name...)
	dst = append(dst, `","email_id":"`...)
	dst = append(dst, first.lower...)
	dst = append(dst, '.')
	dst = append(dst, last.lower...)
	dst = strconv.AppendUint(dst, user, 10)
	dst = append(dst, '@')
	dst = append(dst, emailDomains[skewedHash(uh>>20, len(emailDomains))]...)
	dst = append(dst, `","gender":"`...)
	dst = append(dst, first.gender)
	dst = append(dst, `","date_of_birth":"`...)
	dst = appendDigits(dst, 1950+int(uh>>24%58), 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, 1+int(uh>>32%12), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, 1+int(uh>>40%28), 2)
	dst = append(dst, `","country":"`...)
	dst = append(dst, c.code...)
	dst = append(dst, `","language":"`...)
	dst = append(dst, c.language...)
	dst = append(dst, `","time_zone":"`...)
	dst = append(dst, c.timeZone...)
	dst = append(dst, `","date_of_first_use":"`...)
	dst = appendTime(dst, signupMs)
	dst = append(dst, '"')
	if g.intn(2) == 0 {
		dst = append(dst, `,"city":"`...)
		dst = append(dst, c.cities[g.skewed(len(c.cities))]...)
		dst = append(dst, '"')
	}
	if g.intn(10) < 3 {
		dst = append(dst, `,"phone":"+`...)
		dst = append(dst, c.dialCode...)
		dst = strconv.AppendUint(dst, 200_000_000+g.uint64n(700_000_000), 10)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"custom-plan":"`...)
	dst = append(dst, profilePlans[g.skewed(len(profilePlans))]...)
	dst = append(dst, `","custom-signup_date":"`...)
	dst = appendTime(dst, signupMs)
	dst = append(dst, `","custom-signup_method":"`...)
	dst = append(dst, methods[g.skewed(len(methods))]...)
	dst = append(dst, `","custom-marketing_opt_in":`...)
	dst = appendBool(dst, g.intn(3) > 0)
	dst = append(dst, `,"custom-logins":1,"custom-tags":[`...)
	for i := range 1 + g.skewed(3) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendQuoted(dst, tags[(int(uh>>44)+i*3)%len(tags)])
	}
	dst = append(dst, ']')
	if g.intn(5) == 0 {
		dst = append(dst, `,"custom-referrer":"`...)
		dst = append(dst, referrers[g.skewed(len(referrers))]...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// appendUpdate appends an update of an existing user: when they were last
// seen, and a few changes made with the operations of SPEC.md section 4.
func (g *ProfileGenerator) appendUpdate(dst []byte) []byte {
	user := (pickAlias(g.users, g.pcg.Uint64())*userStride + 12_345) % userCount
	// Some backends still send the older name of the key.
	dst = g.appendUserID(dst, user, g.intn(10) == 0)
	dst = append(dst, `,"date_of_last_use":"`...)
	dst = appendTime(dst, baseMs-1-int64(g.uint64n(timeSpanMs)))
	dst = append(dst, '"')
	if g.intn(5) > 0 {
		dst = append(dst, `,"custom-logins":{"inc":1}`...)
	}
	switch r := g.intn(10); {
	case r < 3:
		dst = append(dst, `,"custom-tags":{"add":[`...)
		dst = appendQuoted(dst, tags[g.skewed(len(tags))])
		dst = append(dst, "]}"...)
	case r < 4:
		dst = append(dst, `,"custom-tags":{"remove":[`...)
		dst = appendQuoted(dst, tags[g.skewed(len(tags))])
		dst = append(dst, "]}"...)
	}
	if g.intn(5) == 0 {
		dst = append(dst, `,"custom-ltv":{"inc":`...)
		dst = append(dst, prices[g.skewed(len(prices))]...)
		dst = append(dst, '}')
	}
	if g.intn(20) < 3 {
		dst = append(dst, `,"custom-last_screen":"`...)
		dst = append(dst, screens[g.skewed(len(screens))]...)
		dst = append(dst, '"')
	}
	if g.intn(10) == 0 {
		dst = append(dst, `,"custom-push_enabled":`...)
		dst = appendBool(dst, g.intn(4) > 0)
	}
	if g.intn(20) == 0 {
		dst = append(dst, `,"custom-plan":"`...)
		dst = append(dst, profilePlans[g.skewed(len(profilePlans))]...)
		dst = append(dst, '"')
	}
	if g.intn(20) == 0 {
		dst = append(dst, `,"custom-trial_ends":null`...)
	}
	if g.intn(20) == 0 {
		c := &profileCountries[skewedHash(mix64(user^profileSalt)>>3, len(profileCountries))]
		dst = append(dst, `,"city":"`...)
		dst = append(dst, c.cities[g.skewed(len(c.cities))]...)
		dst = append(dst, '"')
	}
	if g.intn(30) == 0 {
		dst = append(dst, `,"custom-nps":`...)
		dst = strconv.AppendInt(dst, int64(10-g.skewed(11)), 10)
	}
	return append(dst, '}')
}

// appendAliasOnly appends a profile known only by its Facebook alias, with
// an attribute or two. Facebook aliases never come with a userId, so they
// can never be attached to two profiles.
func (g *ProfileGenerator) appendAliasOnly(dst []byte) []byte {
	fb := (pickAlias(g.users, g.pcg.Uint64())*fbStride + 4_242) % userCount
	dst = append(dst, `{"user_alias":{"alias_label":"facebook","alias_id":"fb`...)
	dst = strconv.AppendUint(dst, 1_000_000+fb, 10)
	dst = append(dst, `"},"date_of_last_use":"`...)
	dst = appendTime(dst, baseMs-1-int64(g.uint64n(timeSpanMs)))
	dst = append(dst, '"')
	switch g.intn(3) {
	case 0:
		dst = append(dst, `,"custom-fb_friends":`...)
		dst = strconv.AppendInt(dst, int64(g.intn(40)*g.intn(40)), 10)
	case 1:
		dst = append(dst, `,"language":"`...)
		dst = append(dst, profileCountries[g.skewed(len(profileCountries))].language...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// appendUserID opens a profile object with "userId":"puser-N", or with
// "customer_id", its synonym.
func (g *ProfileGenerator) appendUserID(dst []byte, user uint64, customerID bool) []byte {
	if g.track {
		g.tracked = append(g.tracked, user)
	}
	if customerID {
		dst = append(dst, `{"customer_id":"puser-`...)
	} else {
		dst = append(dst, `{"userId":"puser-`...)
	}
	dst = strconv.AppendUint(dst, user, 10)
	return append(dst, '"')
}

// profileCountry is what a user's country implies about the rest of the profile.
type profileCountry struct {
	code, language, timeZone, dialCode string
	cities                             []string
}

// profileCountries runs from the most to the least common country.
var profileCountries = [...]profileCountry{
	{"US", "en", "America/New_York", "1", []string{"New York", "Los Angeles", "Chicago", "Austin", "Seattle"}},
	{"IN", "hi", "Asia/Kolkata", "91", []string{"Bengaluru", "Mumbai", "Delhi", "Pune"}},
	{"GB", "en", "Europe/London", "44", []string{"London", "Manchester", "Leeds"}},
	{"DE", "de", "Europe/Berlin", "49", []string{"Berlin", "Munich", "Hamburg"}},
	{"BR", "pt", "America/Sao_Paulo", "55", []string{"São Paulo", "Rio de Janeiro", "Curitiba"}},
	{"FR", "fr", "Europe/Paris", "33", []string{"Paris", "Lyon", "Toulouse"}},
	{"CA", "en", "America/Toronto", "1", []string{"Toronto", "Vancouver", "Montréal"}},
	{"ES", "es", "Europe/Madrid", "34", []string{"Madrid", "Barcelona", "Valencia"}},
	{"JP", "ja", "Asia/Tokyo", "81", []string{"Tokyo", "Osaka", "Fukuoka"}},
	{"AU", "en", "Australia/Sydney", "61", []string{"Sydney", "Melbourne", "Brisbane"}},
	{"NL", "nl", "Europe/Amsterdam", "31", []string{"Amsterdam", "Rotterdam", "Utrecht"}},
	{"MX", "es", "America/Mexico_City", "52", []string{"Mexico City", "Guadalajara", "Monterrey"}},
}

// personName is a name as written and as it appears in an email address,
// with the gender (M, F, O or U) of the users who carry it.
type personName struct {
	name, lower string
	gender      byte
}

var firstNames = [...]personName{
	{"Olivia", "olivia", 'F'}, {"Liam", "liam", 'M'}, {"Emma", "emma", 'F'}, {"Noah", "noah", 'M'},
	{"Amelia", "amelia", 'F'}, {"Oliver", "oliver", 'M'}, {"Sophia", "sophia", 'F'}, {"Mateo", "mateo", 'M'},
	{"Aarav", "aarav", 'M'}, {"Priya", "priya", 'F'}, {"Lukas", "lukas", 'M'}, {"Mia", "mia", 'F'},
	{"Yuki", "yuki", 'U'}, {"Hiroshi", "hiroshi", 'M'}, {"Camille", "camille", 'F'}, {"Lucas", "lucas", 'M'},
	{"Sofía", "sofia", 'F'}, {"Diego", "diego", 'M'}, {"Alex", "alex", 'O'}, {"Sam", "sam", 'U'},
	{"Ana", "ana", 'F'}, {"João", "joao", 'M'}, {"Chloe", "chloe", 'F'}, {"Ethan", "ethan", 'M'},
}

var lastNames = [...]personName{
	{"Smith", "smith", 0}, {"Garcia", "garcia", 0}, {"Müller", "mueller", 0}, {"Patel", "patel", 0},
	{"Silva", "silva", 0}, {"Martin", "martin", 0}, {"Tanaka", "tanaka", 0}, {"Johnson", "johnson", 0},
	{"Brown", "brown", 0}, {"Sharma", "sharma", 0}, {"Dubois", "dubois", 0}, {"Rossi", "rossi", 0},
	{"Nguyen", "nguyen", 0}, {"Kim", "kim", 0}, {"López", "lopez", 0}, {"de Vries", "devries", 0},
}

var (
	emailDomains = []string{"gmail.com", "outlook.com", "yahoo.com", "icloud.com", "example.com", "proton.me"}
	profilePlans = []string{"free", "basic", "pro", "enterprise"}
)
