// nsentry/nsentry.hpp — the whole library. Include the one-concept headers instead to keep
// build times down; each compiles on its own.
#pragma once

#include "nsentry/bootstrap.hpp"
#include "nsentry/child.hpp"
#include "nsentry/create.hpp"
#include "nsentry/error.hpp"
#include "nsentry/executor.hpp"
#include "nsentry/fd.hpp"
#include "nsentry/id_map.hpp"
#include "nsentry/id_map_writer.hpp"
#include "nsentry/join.hpp"
#include "nsentry/ns.hpp"
#include "nsentry/ns_kind.hpp"
#include "nsentry/plan.hpp"
#include "nsentry/probe.hpp"
#include "nsentry/proc_attrs.hpp"
#include "nsentry/scoped_entry.hpp"
#include "nsentry/sys.hpp"
