// Package config holds authgate's configuration: the structs, their
// defaults, Load (strict YAML, then env and *_file secrets) and Validate.
//
// Order of precedence, lowest first: Defaults, the YAML file (strict: an
// unknown key or a wrong type is an error naming the key and its line),
// then the environment (AUTHGATE_SECRET_KEY, AUTHGATE_REDIS_PASSWORD,
// AUTHGATE_REDIS_SENTINEL_PASSWORD) and the *_file secrets
// (store.redis.password_file, sentinel_password_file). Validate reports
// every problem at once as Problems; Warnings lists risky but legal
// settings.
package config
