# Sourced by the integration scripts: the PASS / FAIL counting and the waits they share.
# Each script ends with: echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]
passed=0
failed=0

check() {  # check NAME CONDITION-COMMAND...: PASS or FAIL, counted
  local name=$1
  shift
  if "$@"; then echo "PASS $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}

wait_for() {  # wait_for SECONDS COMMAND...: true once COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $deadline ]; do "$@" && return 0; sleep 0.1; done
  return 1
}

wait_port() {  # wait_port PORT: true once 127.0.0.1:PORT accepts (10 s at most)
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
