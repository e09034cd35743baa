package bench

import "math"

// attrKind names one attribute that an event may carry; attrKeys gives its
// JSON key and Generator.appendAttr its value.
type attrKind uint8

const (
	aScreen attrKind = iota
	aPrevScreen
	aButton
	aDurationMs
	aQuery
	aResultsCount
	aProduct
	aProductID
	aCategory
	aPrice
	aQuantity
	aCurrency
	aRevenue
	aOrderID
	aItems
	aPlan
	aIsTrial
	aEnabled
	aColdStart
	aFirstTime
	aCampaign
	aMethod
	aStep
	aErrorCode
	aRating
	aPercent
	aVideoID
	aPositionSec
	aNotifType
	aChannel
	aSetting
	aPermission
	aCoupon
	aDiscountPct
	aShareTarget
	aContentID
	aFromVersion
	aToVersion
	aNetwork
	aReferrer
	aExperiment
	aTags
	aSessionID
	aPlatform
	aAppVersion
	aCountry
	aScore
	aNote
	attrKindCount
)

// attrKeys holds each attribute's `"key":` prefix, quoted once.
var attrKeys = func() [attrKindCount]string {
	names := [attrKindCount]string{
		aScreen:       "screen",
		aPrevScreen:   "previous_screen",
		aButton:       "button",
		aDurationMs:   "duration_ms",
		aQuery:        "query",
		aResultsCount: "results_count",
		aProduct:      "product",
		aProductID:    "product_id",
		aCategory:     "category",
		aPrice:        "price",
		aQuantity:     "quantity",
		aCurrency:     "currency",
		aRevenue:      "revenue",
		aOrderID:      "order_id",
		aItems:        "items",
		aPlan:         "plan",
		aIsTrial:      "is_trial",
		aEnabled:      "enabled",
		aColdStart:    "cold_start",
		aFirstTime:    "first_time",
		aCampaign:     "campaign",
		aMethod:       "method",
		aStep:         "step",
		aErrorCode:    "error_code",
		aRating:       "rating",
		aPercent:      "percent",
		aVideoID:      "video_id",
		aPositionSec:  "position_sec",
		aNotifType:    "notification_type",
		aChannel:      "channel",
		aSetting:      "setting",
		aPermission:   "permission",
		aCoupon:       "coupon",
		aDiscountPct:  "discount_pct",
		aShareTarget:  "share_target",
		aContentID:    "content_id",
		aFromVersion:  "from_version",
		aToVersion:    "to_version",
		aNetwork:      "network",
		aReferrer:     "referrer",
		aExperiment:   "experiment",
		aTags:         "tags",
		aSessionID:    "session_id",
		aPlatform:     "platform",
		aAppVersion:   "app_version",
		aCountry:      "country",
		aScore:        "score",
		aNote:         "note",
	}
	var keys [attrKindCount]string
	for i, n := range names {
		if n == "" {
			panic("BUG: attribute kind without a key")
		}
		keys[i] = `"` + n + `":`
	}
	return keys
}()

// commonAttrs follow the event-specific attributes of every event.
var commonAttrs = []attrKind{aSessionID, aPlatform, aAppVersion, aCountry}

// optionalAttrs are added, each with its probability in percent, while an
// event has fewer than maxAttributes attributes.
var optionalAttrs = []struct {
	kind    attrKind
	percent int
}{
	{aNetwork, 45},
	{aCampaign, 18},
	{aIsTrial, 12},
	{aExperiment, 10},
	{aReferrer, 8},
	{aTags, 6},
	{aScore, 5},
	{aNote, 2},
}

// eventDef is one event name and the attributes specific to it.
type eventDef struct {
	name  string
	attrs []attrKind
	has   uint64 // bit k set when attrs holds kind k, so optional attributes never repeat a key
}

// ev builds an eventDef.
func ev(name string, attrs ...attrKind) eventDef {
	d := eventDef{name: name, attrs: attrs}
	for _, k := range attrs {
		d.has |= 1 << k
	}
	return d
}

// eventDef.has is a uint64, so there can be at most 64 attribute kinds: this
// constant fails to compile when there are more.
const _ = uint64(1) << (64 - attrKindCount)

// eventDefs lists the event names from most to least frequent; eventCDF gives
// them Zipf-like weights.
var eventDefs = [...]eventDef{
	ev("screen_view", aScreen, aPrevScreen, aDurationMs),
	ev("button_click", aButton, aScreen),
	ev("app_open", aColdStart, aDurationMs),
	ev("session_start", aReferrer),
	ev("product_viewed", aProduct, aPrice, aCurrency, aScreen),
	ev("search", aQuery, aResultsCount, aDurationMs),
	ev("session_end", aDurationMs, aScreen),
	ev("scroll_depth", aScreen, aPercent),
	ev("add_to_cart", aProductID, aCategory, aPrice, aQuantity, aCurrency),
	ev("notification_received", aNotifType, aChannel),
	ev("feed_refresh", aResultsCount, aDurationMs),
	ev("app_background", aScreen, aDurationMs),
	ev("notification_opened", aNotifType, aChannel, aCampaign),
	ev("video_play", aVideoID, aPositionSec, aScreen),
	ev("like", aContentID, aScreen),
	ev("video_pause", aVideoID, aPositionSec),
	ev("remove_from_cart", aProductID, aQuantity),
	ev("checkout_started", aItems, aPrice, aQuantity, aCurrency),
	ev("video_complete", aVideoID, aDurationMs),
	ev("login", aMethod, aFirstTime),
	ev("share", aContentID, aShareTarget),
	ev("purchase", aOrderID, aProduct, aPrice, aQuantity, aRevenue, aCurrency, aCoupon),
	ev("comment_posted", aContentID, aScreen),
	ev("logout", aScreen),
	ev("payment_failed", aErrorCode, aPrice, aCurrency, aMethod),
	ev("coupon_applied", aCoupon, aDiscountPct, aCurrency),
	ev("subscription_started", aPlan, aPrice, aCurrency, aIsTrial),
	ev("trial_started", aPlan, aCampaign),
	ev("subscription_renewed", aPlan, aPrice, aCurrency),
	ev("signup", aMethod, aReferrer, aCampaign),
	ev("onboarding_step", aStep, aScreen, aDurationMs),
	ev("onboarding_completed", aDurationMs, aStep),
	ev("settings_changed", aSetting, aEnabled),
	ev("permission_granted", aPermission, aEnabled),
	ev("app_error", aErrorCode, aScreen, aNetwork),
	ev("rating_prompt_shown", aScreen),
	ev("subscription_cancelled", aPlan, aDurationMs, aRating),
	ev("rating_submitted", aRating, aTags),
	ev("referral_sent", aShareTarget, aCampaign),
	ev("app_update", aFromVersion, aToVersion),
}

// eventCDF is the cumulative distribution of eventDefs, scaled to 2^32:
// weight (rank+3)^-1.3, so the top event is about 12 % of all events and the
// rarest about 0.3 %.
var eventCDF = func() [len(eventDefs)]uint32 {
	var w [len(eventDefs)]float64
	total := 0.0
	for i := range w {
		w[i] = math.Pow(float64(i+3), -1.3)
		total += w[i]
	}
	var cdf [len(eventDefs)]uint32
	acc := 0.0
	for i := range w {
		acc += w[i]
		cdf[i] = uint32(math.Min(acc/total*(1<<32), math.MaxUint32))
	}
	cdf[len(cdf)-1] = math.MaxUint32
	return cdf
}()

// userAgent is one device string and the platform it implies.
type userAgent struct {
	ua       string
	platform string
}

var userAgents = [...]userAgent{
	{"TroveDemo/4.2.1 (iPhone15,2; iOS 17.5.1; Scale/3.00) CFNetwork/1496.0.7 Darwin/23.5.0", "ios"},
	{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36", "android"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "web"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "ios"},
	{"Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240605.024) TroveDemo/4.2.0", "android"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "web"},
	{"TroveDemo/4.1.3 (iPad13,18; iPadOS 17.4; Scale/2.00) CFNetwork/1494.0.7 Darwin/23.4.0", "ios"},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "web"},
}

var (
	ipPrefixes  = []uint8{73, 86, 92, 103, 177, 189, 24, 49}
	locales     = []string{"en-US", "en-GB", "de-DE", "en-IN", "pt-BR", "fr-FR", "es-ES", "ja-JP"}
	countries   = []string{"US", "GB", "DE", "IN", "BR", "FR", "CA", "ES", "JP", "AU", "NL", "MX"}
	appVersions = []string{"4.2.1", "4.2.0", "4.1.3", "4.0.2", "3.9.7"}
	screens     = []string{"home", "feed", "search", "product_detail", "cart", "checkout", "profile",
		"settings", "notifications", "onboarding_welcome", "order_history", "help_center"}
	buttons = []string{"add_to_cart", "buy_now", "search_submit", "menu_open", "back", "share",
		"follow", "close_modal", "apply_filter", "see_all"}
	queries = []string{"running shoes", "wireless headphones", "yoga mat", "coffee grinder",
		"phone case", "winter jacket", "desk lamp", "backpack", "water bottle", "gift card"}
	products = []struct{ id, category, brand string }{
		{"sku-10422", "shoes", "Stride"},
		{"sku-22107", "electronics", "Sonora"},
		{"sku-30981", "home", "Hearth & Co"},
		{"sku-41876", "apparel", "Northwind"},
		{"sku-52230", "sports", "Peak"},
		{"sku-60017", "beauty", "Lumen"},
		{"sku-71453", "electronics", "Voltix"},
		{"sku-88190", "grocery", "Green Basket"},
	}
	prices       = []string{"9.99", "4.99", "19.99", "0.99", "49.99", "99", "29.5", "149.99"}
	priceCents   = []int64{999, 499, 1999, 99, 4999, 9900, 2950, 14999}
	currencies   = []string{"USD", "EUR", "GBP", "INR", "BRL"}
	plans        = []string{"free", "free", "basic", "pro", "pro", "enterprise"}
	campaigns    = []string{"spring_sale", "black_friday", "referral", "newsletter_oct", "retargeting_q4", "app_store_feature"}
	methods      = []string{"email", "google", "apple", "facebook", "sms"}
	errorCodes   = []string{"E_TIMEOUT", "E_NETWORK", "E_CARD_DECLINED", "E_SERVER_500", "E_PARSE", "E_AUTH_EXPIRED"}
	notifTypes   = []string{"promo", "order_update", "reminder", "social", "price_drop"}
	channels     = []string{"push", "email", "in_app", "sms"}
	settings     = []string{"dark_mode", "push_enabled", "email_digest", "autoplay", "location_sharing"}
	permissions  = []string{"notifications", "location", "camera", "contacts", "photos"}
	coupons      = []string{"WELCOME10", "FREESHIP", "BF2026", "SPRING20", "LOYAL5"}
	shareTargets = []string{"whatsapp", "copy_link", "messages", "instagram", "email", "x"}
	networks     = []string{"wifi", "cellular_5g", "cellular_4g", "offline"}
	referrers    = []string{"direct", "google", "facebook", "newsletter", "app_store", "tiktok"}
	experiments  = []string{"new_checkout", "onboarding_v3", "price_anchor", "feed_ranking_ml"}
	tags         = []string{"whale", "early_adopter", "beta", "churn_risk", "high_intent", "vip", "student"}
)
