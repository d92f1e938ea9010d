"""JSON shapes of GitHub's REST objects, with every field the OpenAPI description marks as
required for the operations qwenfix calls (githubkit validates them)."""

from __future__ import annotations

import base64
from typing import Any

REPO_URLS = (
    "archive_url:/{archive_format}{/ref}",
    "assignees_url:/assignees{/user}",
    "blobs_url:/git/blobs{/sha}",
    "branches_url:/branches{/branch}",
    "collaborators_url:/collaborators{/collaborator}",
    "comments_url:/comments{/number}",
    "commits_url:/commits{/sha}",
    "compare_url:/compare/{base}...{head}",
    "contents_url:/contents/{+path}",
    "contributors_url:/contributors",
    "deployments_url:/deployments",
    "downloads_url:/downloads",
    "events_url:/events",
    "forks_url:/forks",
    "git_commits_url:/git/commits{/sha}",
    "git_refs_url:/git/refs{/sha}",
    "git_tags_url:/git/tags{/sha}",
    "hooks_url:/hooks",
    "issue_comment_url:/issues/comments{/number}",
    "issue_events_url:/issues/events{/number}",
    "issues_url:/issues{/number}",
    "keys_url:/keys{/key_id}",
    "labels_url:/labels{/name}",
    "languages_url:/languages",
    "merges_url:/merges",
    "milestones_url:/milestones{/number}",
    "notifications_url:/notifications{?since,all,participating}",
    "pulls_url:/pulls{/number}",
    "releases_url:/releases{/id}",
    "stargazers_url:/stargazers",
    "statuses_url:/statuses/{sha}",
    "subscribers_url:/subscribers",
    "subscription_url:/subscription",
    "tags_url:/tags",
    "teams_url:/teams",
    "trees_url:/git/trees{/sha}",
)


def repository(
    api: str,
    web: str,
    *,
    full_name: str,
    repo_id: int,
    owner: dict[str, Any],
    private: bool,
    default_branch: str,
    now: str,
) -> dict[str, Any]:
    url = f"{api}/repos/{full_name}"
    out: dict[str, Any] = {
        name: url + suffix for name, _, suffix in (item.partition(":") for item in REPO_URLS)
    }
    out.update(
        {
            "id": repo_id,
            "node_id": f"R_{repo_id}",
            "name": full_name.split("/")[1],
            "full_name": full_name,
            "owner": owner,
            "private": private,
            "description": None,
            "fork": False,
            "url": url,
            "html_url": f"{web}/{full_name}",
            "clone_url": f"{web}/{full_name}.git",
            "git_url": f"git://fake/{full_name}.git",
            "ssh_url": f"git@fake:{full_name}.git",
            "svn_url": f"{web}/{full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 1,
            "default_branch": default_branch,
            "open_issues_count": 0,
            "open_issues": 0,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "license": None,
            "pushed_at": now,
            "created_at": now,
            "updated_at": now,
            "network_count": 0,
            "subscribers_count": 0,
            "visibility": "private" if private else "public",
        }
    )
    return out


def issue(
    api: str,
    web: str,
    *,
    full_name: str,
    number: int,
    issue_id: int,
    title: str,
    body: str,
    user: dict[str, Any],
    state: str,
    created_at: str,
    pull: bool,
) -> dict[str, Any]:
    url = f"{api}/repos/{full_name}/issues/{number}"
    out: dict[str, Any] = {
        "id": issue_id,
        "node_id": f"I_{issue_id}",
        "url": url,
        "repository_url": f"{api}/repos/{full_name}",
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": f"{web}/{full_name}/{'pull' if pull else 'issues'}/{number}",
        "number": number,
        "state": state,
        "title": title,
        "body": body,
        "user": user,
        "labels": [],
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "comments": 0,
        "closed_at": None,
        "created_at": created_at,
        "updated_at": created_at,
        "author_association": "OWNER",
    }
    if pull:
        out["pull_request"] = {
            "url": f"{api}/repos/{full_name}/pulls/{number}",
            "html_url": out["html_url"],
            "diff_url": None,
            "patch_url": None,
        }
    return out


def branch_end(
    repo_json: dict[str, Any], user: dict[str, Any], ref: str, sha: str
) -> dict[str, Any]:
    return {
        "label": f"{repo_json['owner']['login']}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user,
        "repo": repo_json,
    }


def pull_request(
    api: str,
    web: str,
    *,
    full_name: str,
    pr: dict[str, Any],
    repo_json: dict[str, Any],
    user: dict[str, Any],
    reviewers: list[dict[str, Any]],
) -> dict[str, Any]:
    number = pr["number"]
    url = f"{api}/repos/{full_name}/pulls/{number}"
    issue_url = f"{api}/repos/{full_name}/issues/{number}"
    html = f"{web}/{full_name}/pull/{number}"
    links = {
        "self": url,
        "html": html,
        "issue": issue_url,
        "comments": f"{issue_url}/comments",
        "review_comments": f"{url}/comments",
        "review_comment": f"{api}/repos/{full_name}/pulls/comments{{/number}}",
        "commits": f"{url}/commits",
        "statuses": f"{api}/repos/{full_name}/statuses/{pr['head_sha']}",
    }
    return {
        "url": url,
        "id": pr["id"],
        "node_id": f"PR_{pr['id']}",
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue_url,
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": number,
        "state": pr["state"],
        "locked": False,
        "title": pr["title"],
        "user": user,
        "body": pr["body"],
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pr["created_at"],
        "updated_at": pr["updated_at"],
        "closed_at": None,
        "merged_at": None,
        "merge_commit_sha": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": reviewers,
        "requested_teams": [],
        "head": branch_end(repo_json, user, pr["head"], pr["head_sha"]),
        "base": branch_end(repo_json, repo_json["owner"], pr["base"], pr["base_sha"]),
        "_links": {k: {"href": v} for k, v in links.items()},
        "author_association": "NONE",
        "auto_merge": None,
        "draft": pr["draft"],
        "merged": False,
        "mergeable": True,
        "rebaseable": True,
        "mergeable_state": "clean",
        "merged_by": None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": pr.get("additions", 0),
        "deletions": pr.get("deletions", 0),
        "changed_files": pr.get("changed_files", 0),
    }


def git_ref(api: str, full_name: str, ref: str, sha: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "node_id": f"REF_{sha[:8]}",
        "url": f"{api}/repos/{full_name}/git/{ref}",
        "object": {
            "type": "commit",
            "sha": sha,
            "url": f"{api}/repos/{full_name}/git/commits/{sha}",
        },
    }


def review(
    api: str, web: str, *, full_name: str, number: int, item: dict[str, Any], user: dict[str, Any]
) -> dict[str, Any]:
    pull_url = f"{api}/repos/{full_name}/pulls/{number}"
    html = f"{web}/{full_name}/pull/{number}#pullrequestreview-{item['id']}"
    return {
        "id": item["id"],
        "node_id": f"PRR_{item['id']}",
        "user": user,
        "body": item["body"],
        "state": item["state"],
        "commit_id": item["commit_id"],
        "html_url": html,
        "pull_request_url": pull_url,
        "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
        "submitted_at": item["created_at"],
        "author_association": "NONE",
    }


def review_comment(
    api: str, web: str, *, full_name: str, number: int, item: dict[str, Any], user: dict[str, Any]
) -> dict[str, Any]:
    url = f"{api}/repos/{full_name}/pulls/comments/{item['id']}"
    pull_url = f"{api}/repos/{full_name}/pulls/{number}"
    html = f"{web}/{full_name}/pull/{number}#discussion_r{item['id']}"
    return {
        "url": url,
        "id": item["id"],
        "node_id": f"PRRC_{item['id']}",
        "pull_request_review_id": item["review_id"],
        "diff_hunk": item["diff_hunk"],
        "path": item["path"],
        "line": item["line"],
        "side": item["side"],
        "original_line": item["line"],
        "commit_id": item["commit_id"],
        "original_commit_id": item["commit_id"],
        "in_reply_to_id": item.get("reply_to"),
        "user": user,
        "body": item["body"],
        "created_at": item["created_at"],
        "updated_at": item["created_at"],
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": "NONE",
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": pull_url},
        },
    }


def content_file(
    api: str, *, full_name: str, path: str, sha: str, content: bytes
) -> dict[str, Any]:
    """GET /repos/{owner}/{repo}/contents/{path} for a file (base64, as GitHub sends it:
    wrapped at 60 characters)."""
    encoded = base64.b64encode(content).decode()
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
    url = f"{api}/repos/{full_name}/contents/{path}"
    git_url = f"{api}/repos/{full_name}/git/blobs/{sha}"
    html = f"{api}/{full_name}/blob/HEAD/{path}"
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(content),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": wrapped,
        "sha": sha,
        "url": url,
        "git_url": git_url,
        "html_url": html,
        "download_url": None,
        "_links": {"self": url, "git": git_url, "html": html},
    }
