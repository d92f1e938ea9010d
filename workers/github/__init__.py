"""The GitHub client used by workers: App authentication, repository operations and git
against GitHub with an installation token.
"""
