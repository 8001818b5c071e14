# hark: the two set-up commands are `make demo` and `make test`.
# Everything else here is a convenience around CMake/CTest.
.PHONY: all deps build build-asan demo test test-release test-asan bench bench-llm bench-analyze bench-video clean

JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     ?= build
ASAN      ?= build-asan
HARK_SHARED ?= $(abspath ../shared)
export HARK_SHARED
FILE      ?=

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DHARK_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)/hark $(FILE)

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS) -LE nosan

test: test-release test-asan

bench: build
	@bench/run.sh $(BUILD)

bench-llm: build
	@bench/bench_llm.sh $(BUILD)

bench-analyze: build
	@bench/bench_analyze.sh $(BUILD)

bench-video: build
	@bench/bench_video.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN)
