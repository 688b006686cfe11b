package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/storage"
)

// storageCheckTimeout bounds the call made at start to check the S3 bucket.
const storageCheckTimeout = 30 * time.Second

// openStorage opens where homes live. With s3 it makes one cheap call (HeadBucket),
// so a missing bucket, refused credentials or an unreachable endpoint stop djftpd at
// start with exit 2 and the variable to fix; requests are counted on reg.
func openStorage(ctx context.Context, cfg config, reg prometheus.Registerer) (storage.Storage, error) {
	loc := storage.Location(cfg.Storage)
	if loc.Kind != "s3" {
		st, err := storage.NewLocal(cfg.HomeRoot, cfg.CreateHome)
		if err != nil {
			return nil, fmt.Errorf("DJFTPD_HOME_ROOT: %w", err)
		}
		return st, nil
	}
	sc := cfg.s3()
	sc.Metrics = storage.NewMetrics(reg)
	s, err := storage.NewS3(ctx, loc, sc)
	if err != nil {
		return nil, &configError{"STORAGE", fmt.Sprintf("%s: %v", loc, err)}
	}
	checkCtx, cancel := context.WithTimeout(ctx, storageCheckTimeout)
	defer cancel()
	if err := s.Check(checkCtx); err != nil {
		return nil, &configError{"STORAGE", fmt.Sprintf("%s: %v", loc, err)}
	}
	return s, nil
}
