"""The GraphQL queries the GitHub connector sends, as data.

Tests validate every string in QUERIES against GitHub's published schema, so a wrong field
fails in the test suite rather than against github.com.

Cost: GitHub charges a query by the connections it may read (pullRequests 100 + six nested
connections per PR ≈ 7 points), far below one REST call per PR for commits, reviews and
comments.
"""

from __future__ import annotations

PAGE_SIZE = 100  # GitHub's maximum for a connection

# Newest-updated first, so an incremental sync stops at the first page older than its cursor.
# commits(first: 10): the earliest authored date is nearly always among a PR's first commits
# (they come in order); reviews(first: 30) and comments(first: 30) reach the first human
# response past bot comments, the author's own and those made while the PR was a draft.
PULL_REQUESTS = """
query PullRequests($owner: String!, $name: String!, $cursor: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequests(first: 100, after: $cursor, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number title body url isDraft
        createdAt updatedAt mergedAt closedAt
        baseRefName headRefName
        author { __typename login }
        mergeCommit { oid }
        labels(first: 20) { nodes { name } }
        commits(first: 10) { nodes { commit { authoredDate } } }
        timelineItems(last: 1, itemTypes: [READY_FOR_REVIEW_EVENT]) {
          nodes { ... on ReadyForReviewEvent { createdAt } }
        }
        reviews(first: 30) { nodes { author { __typename login } state submittedAt createdAt } }
        comments(first: 30) { nodes { author { __typename login } createdAt } }
      }
    }
  }
}
"""

# Newest-created first; statuses are read in the same query (no call per deployment).
DEPLOYMENTS = """
query Deployments($owner: String!, $name: String!, $cursor: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    deployments(first: 100, after: $cursor, orderBy: {field: CREATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        databaseId environment commitOid createdAt updatedAt
        ref { name }
        latestStatus { state createdAt }
        statuses(first: 20) { nodes { state createdAt } }
      }
    }
  }
}
"""

QUERIES = {"pull_requests": PULL_REQUESTS, "deployments": DEPLOYMENTS}
