"""Send mail: verification links, password resets, notices of new sign-ins.

A request only queues what is to be sent (``outbox``); a sender thread in each process writes
each letter (``letters``, from templates an instance may override, its link's token minted
then: ``links``) and hands it to the mail server (``smtp``), retrying with backoff, so a slow
or absent mail server never delays a request and a restart loses nothing. Python's smtplib and
email packages speak SMTP and MIME.
"""
