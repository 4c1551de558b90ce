//go:build !unix

package main

import "time"

// processCPU is unknown here: the CPU columns read 0.
func processCPU() (total, sys time.Duration) { return 0, 0 }
