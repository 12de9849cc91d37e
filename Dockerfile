# syntax=docker/dockerfile:1

# Build: a static binary (no cgo), cross-compiled for the target platform.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/authgate ./cmd/authgate
# The data directory, owned by the runtime user (distroless has no shell
# to create it later).
RUN mkdir -p /out/data && chmod 0700 /out/data

# Run: distroless static (CA certificates, tzdata, /etc/passwd), as the
# unprivileged "nonroot" user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authgate /authgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/authgate
USER 65532:65532
# Embedded store, generated secret key and the control socket live here.
VOLUME ["/var/lib/authgate"]
EXPOSE 8080
ENTRYPOINT ["/authgate"]
CMD ["serve", "--config", "/etc/authgate/authgate.yaml"]
