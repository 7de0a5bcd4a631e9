# syntax=docker/dockerfile:1
#
# tpe-provisioner container image: a static Go binary on distroless, running as non-root.
#
#   docker build -t tpe-provisioner:dev .
#   docker run --rm tpe-provisioner:dev --help
#
# The release build below is the same command CI runs (.ci/run); deploy/deploy_test.go keeps
# the two in step:
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/tpe-provisioner ./cmd/tpe-provisioner
#
# VERSION and REVISION are stamped into the binary (`tpe-provisioner version`, the start-up log
# and the tpe_build_info metric):
#   docker build --build-arg VERSION=v1.2.0 --build-arg REVISION=$(git rev-parse HEAD) -t tpe-provisioner:v1.2.0 .

FROM golang:1.26 AS build
WORKDIR /src
# No .git in the build context (.dockerignore), so do not try to stamp VCS info; CI does the same.
ENV GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/tpe-provisioner ./cmd/tpe-provisioner

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tpe-provisioner /tpe-provisioner
# 65532:65532 is distroless's "nonroot"; numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# /healthz, /readyz and /metrics (TPE_HTTP_LISTEN).
EXPOSE 8080
ENTRYPOINT ["/tpe-provisioner"]
CMD ["run"]
