package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/internal/config"
)

func newStatusCommand() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every environment's revision, phase and health, from a running ferry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := strings.TrimRight(server, "/") + "/api/v1/status"
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				return fmt.Errorf("status: %w (is ferry serve running at %s?)", err, server)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status: %s answered %s", url, resp.Status)
			}
			var body statusResponse
			if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
				return fmt.Errorf("status: %s: %w", url, err)
			}
			printStatus(cmd.OutOrStdout(), body.Environments)
			for _, u := range body.Unreachable {
				fmt.Fprintf(cmd.OutOrStdout(), "member %s did not answer: %s\n", u.Member, oneLine(u.Error))
			}
			if len(body.Unreachable) > 0 {
				return fmt.Errorf("status: %d of the ring's %d members did not answer; their environments show ?", len(body.Unreachable), len(body.Members))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://"+config.DefaultAdminListen, "URL of a running ferry serve's admin listener (adminListen in ferry.yaml)")
	return cmd
}
