// The integer constructor is explicit: no silent conversion from int.
// expect: conversion from
// expect: no viable conversion
#include "nsentry/ns.hpp"
using namespace nsentry;
int main() {
#ifdef NSENTRY_MISUSE
  ns_set s = CLONE_NEWNET;
#else
  ns_set s{CLONE_NEWNET};
#endif
  return static_cast<int>(s.size());
}
