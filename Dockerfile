# Ferry's image: a static binary on a minimal, non-root base.
# Build: docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse --short HEAD) -t ferry .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/ferry ./cmd/ferry \
 && mkdir -p /out/data

# distroless/static carries the CA certificates go-git needs for https:// remotes;
# go-git is pure Go, so no git binary is needed at run time.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ferry /usr/local/bin/ferry
# Clones live here; mount a volume to keep them across restarts.
COPY --from=build --chown=65532:65532 /out/data /var/lib/ferry
USER 65532:65532
WORKDIR /var/lib/ferry
EXPOSE 8080
ENTRYPOINT ["ferry"]
CMD ["serve"]
