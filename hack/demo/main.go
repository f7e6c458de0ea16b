// Command demo plays Ferry's story on this machine (make demo), or deletes
// what it left running (make demo-down). See internal/demo.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ferry-gitops/ferry/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) != 2 || (args[0] != "up" && args[0] != "down") {
		return fmt.Errorf("usage: demo up|down FERRY_BINARY")
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	ferry, err := filepath.Abs(args[1])
	if err != nil {
		return err
	}
	opts := demo.Options{Root: root, Ferry: ferry, Out: os.Stdout}
	if args[0] == "down" {
		return demo.Down(ctx, opts)
	}
	_, err = demo.Up(ctx, opts)
	return err
}
