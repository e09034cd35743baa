# Trove's container image: a static binary on distroless, run as non-root.
#
#   docker build -t trove .
#   docker run -p 8080:8080 -v trove-data:/data trove
#
# The tests (e2e/docker_test.go) read this file: they build the same binary and
# assemble an image with the USER, EXPOSE, VOLUME, ENV, HEALTHCHECK,
# ENTRYPOINT and CMD below, so keep those lines simple (exec form, one
# value per line where the form allows).

# Fully qualified names: podman, and engines configured without a default
# registry, refuse short ones such as golang:1.26.
FROM docker.io/library/golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Pure Go (no cgo): a static binary that needs no libc in the image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/trove . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/trove /trove
# A named volume mounted here starts with this directory's owner, so the
# non-root user can write to it.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
EXPOSE 8080
ENV TROVE_DATA=/data TROVE_LISTEN=:8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/trove", "healthcheck"]
ENTRYPOINT ["/trove"]
CMD ["serve"]
