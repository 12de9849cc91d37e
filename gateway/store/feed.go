package store

// Causes of a change-feed reset: why a backend's invalidation feed told
// its cache that changes may have been missed (redisstore's feed sends
// them, gateway/store/cache logs and counts them, the metrics label
// authgate_cache_resets_total with them).
const (
	// FeedSubscribed: (re)subscribed; changes made before may have been
	// missed.
	FeedSubscribed = "subscribed"
	// FeedFlush: a flush was announced (a restore), or a message could
	// not be read.
	FeedFlush = "flush"
	// FeedError: the feed's connection failed or could not subscribe.
	FeedError = "error"
	// FeedSilent: the backend answered none of the feed's pings for the
	// feed's limit.
	FeedSilent = "silent"
	// FeedStopped: the feed was stopped (shutdown).
	FeedStopped = "stopped"
)
