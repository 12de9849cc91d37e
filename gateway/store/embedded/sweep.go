package embedded

import (
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sweepBatch caps the deletions of one write transaction so the sweeper
// never holds the writer lock for long.
const sweepBatch = 1000

func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
			// An error here means the database is closing or damaged;
			// reads still treat expired items as missing, so the next
			// tick simply tries again.
			_, _ = s.sweep()
		}
	}
}

// sweep deletes every expired session, step, counter and ban and returns
// how many items it removed.
func (s *Store) sweep() (int, error) {
	total := 0
	for _, bucket := range [][]byte{bucketSessions, bucketSteps, bucketCounters, bucketBans} {
		for {
			n, more, err := s.sweepBucket(bucket)
			total += n
			if err != nil {
				return total, err
			}
			if !more {
				break
			}
			select {
			case <-s.stop:
				return total, nil
			default:
			}
		}
	}
	return total, nil
}

// sweepBucket deletes up to sweepBatch expired items of one bucket and
// reports whether more may remain.
func (s *Store) sweepBucket(bucket []byte) (n int, more bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		now := s.now()
		b := tx.Bucket(bucket)
		var expiredKeys [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(expiredKeys) == sweepBatch {
				more = true
				break
			}
			if isExpiredValue(v, now) {
				expiredKeys = append(expiredKeys, slices.Clone(k))
			}
		}
		for _, k := range expiredKeys {
			var err error
			if string(bucket) == string(bucketSessions) {
				err = deleteSession(tx, k)
			} else {
				err = b.Delete(k)
			}
			if err != nil {
				return err
			}
		}
		n = len(expiredKeys)
		return nil
	})
	return n, more, err
}

// isExpiredValue decodes the expiry of a stored session, step, counter or
// ban.
// An undecodable value is left alone: reads report it as an error rather
// than the sweeper hiding it.
func isExpiredValue(v []byte, now time.Time) bool {
	var rec struct {
		Expiry int64 `json:"expiry_unix_nano"`
	}
	return decode(v, &rec) == nil && expired(rec.Expiry, now)
}
